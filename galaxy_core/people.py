"""Who is who in a class, and who may do what.

A `User` is someone the platform vouched for: the school's OpenID Connect provider (`st.user` after `st.login`), the
lab's own roster (a name and a code the teacher handed out, galaxy_core.roster), or, on a lab without sign-in
(`auth = "none"`) and in a terminal on the server's machine, the teacher of the machine. Never anything a client
can type into a URL or a widget.

Every action that changes something asks `require(...)` here, whatever the page shows: a hidden button is a
courtesy, not the check. A refusal says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from galaxy_core.errors import GalaxyLabError

TEACHER, STUDENT = "teacher", "student"
ROLES = (TEACHER, STUDENT)
MAX_NAME = 60


class NotAllowedError(GalaxyLabError, PermissionError):
    """Someone asked for something their role or their runs do not allow; the message says why."""


def user_key(text: str) -> str:
    """The id a name or an e-mail address is known by: case and surrounding or repeated spaces do not count."""
    return re.sub(r"\s+", " ", text.strip()).casefold()


def printable(text: str, limit: int = MAX_NAME) -> str:
    """Text someone typed, as it may be stored and shown: control characters dropped, at most `limit` characters."""
    return "".join(c for c in text if c.isprintable())[:limit].strip()


@dataclass(frozen=True)
class User:
    id: str  # an e-mail address (OpenID Connect), a roster name's key, or "teacher"
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


def owns(user: User, owner_id: str | None) -> bool:
    """Whether `user` owns something of `owner_id` (None: made before runs had owners, so the teacher's)."""
    return user.id == (owner_id or MACHINE_TEACHER.id)


def require_owner_or_teacher(user: User, owner_id: str | None, owner_name: str, action: str, what: str) -> None:
    """Refuse `action` ("stop", "rename", ...) on `what` (a run, named) unless `user` owns it or teaches."""
    if user.is_teacher or owns(user, owner_id):
        return
    raise NotAllowedError(
        f"{user.name} may not {action} {what}: it is {owner_name}'s, and only its owner or a teacher may"
    )


def require_teacher(user: User, action: str) -> None:
    if not user.is_teacher:
        raise NotAllowedError(f"only a teacher may {action}; {user.name} is a {user.role}")
