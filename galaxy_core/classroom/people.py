"""Who is who in a class.

A `User` is someone the platform vouched for: the school's OpenID Connect provider (`st.user` after `st.login`,
galaxy_core.classroom.identity), the lab's own roster (a name and a code the teacher handed out,
galaxy_core.classroom.roster), or, on a lab without sign-in (`auth = "none"`) and in a terminal on the server's
machine, the teacher of the machine. Never anything a client can type into a URL or a widget. What each may do is
galaxy_core.classroom.access's table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEACHER, STUDENT = "teacher", "student"
ROLES = (TEACHER, STUDENT)
MAX_NAME = 60


def user_key(text: str) -> str:
    """The id a name or an e-mail address is known by: case and surrounding or repeated spaces do not count."""
    return re.sub(r"\s+", " ", text.strip()).casefold()


def printable(text: str, limit: int = MAX_NAME) -> str:
    """Text someone typed, as it may be stored and shown: control characters dropped, at most `limit` characters."""
    return "".join(c for c in text if c.isprintable())[:limit].strip()


@dataclass(frozen=True)
class User:
    id: str  # the provider's issuer and subject (OpenID Connect), a roster name's key, or "teacher"
    name: str  # as it is shown
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"a role is one of {ROLES}, not {self.role!r}")

    @property
    def is_teacher(self) -> bool:
        return self.role == TEACHER

    def describe(self) -> str:
        return f"{self.name} ({self.role})"


# The one user of a lab without sign-in, and whoever uses the CLI on the server's machine.
MACHINE_TEACHER = User(id="teacher", name="the teacher", role=TEACHER)
