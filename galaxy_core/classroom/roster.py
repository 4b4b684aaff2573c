"""A class without an identity provider: the teacher's roster of students, each with a code handed out by the
teacher, and the teacher's own secret.

    <runs folder>/.class/roster.json      names, and a salted scrypt hash of each code (never a code itself)

`galaxy-lab roster ...` manages the roster on the server's machine. A sign-in (the name and the code, posted by
the sign-in form, galaxy_core.classroom.sign_in) starts a session (galaxy_core.classroom.sessions). A new code
also forgets the wrong codes tried for the name (galaxy_core.classroom.throttle): whatever slowed its sign-in is
gone with the old code.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from galaxy_core.classroom import class_folder
from galaxy_core.classroom.people import MAX_NAME, STUDENT, TEACHER, User, printable, user_key
from galaxy_core.classroom.throttle import SignInThrottle
from galaxy_core.errors import GalaxyLabError, InvalidInputError
from galaxy_core.files import write_json_atomically

CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are read aloud and copied by hand
CODE_LENGTH, SECRET_LENGTH = 10, 20
TEACHER_NAME = "teacher"  # the name the teacher signs in with


class RosterError(GalaxyLabError, ValueError):
    """A roster change that cannot be made (a name taken or unknown, no teacher secret yet); the message says why."""


def new_code(length: int = CODE_LENGTH) -> str:
    """A code to hand out: `length` characters in groups of five, from an alphabet without look-alikes."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
    return "-".join(raw[start : start + 5] for start in range(0, length, 5))


def _hash(code: str, salt: bytes) -> bytes:
    normalized = code.replace("-", "").replace(" ", "").casefold().encode()
    return hashlib.scrypt(normalized, salt=salt, n=2**14, r=8, p=1, dklen=32)


def _hashed(code: str) -> dict:
    salt = secrets.token_bytes(16)
    return {"salt": salt.hex(), "hash": _hash(code, salt).hex(), "since": time.time()}


def _matches(code: str, entry: dict) -> bool:
    try:
        expected = bytes.fromhex(entry["hash"])
        return hmac.compare_digest(_hash(code, bytes.fromhex(entry["salt"])), expected)
    except (KeyError, TypeError, ValueError):
        return False


class Roster:
    """The roster file of a runs folder."""

    def __init__(self, runs_dir: str | Path):
        self.folder = class_folder(runs_dir)
        self.path = self.folder / "roster.json"
        self.throttle = SignInThrottle(runs_dir)

    def _read(self) -> dict:
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"students": {}}
        except (OSError, ValueError) as error:
            raise RosterError(f"the roster {self.path} cannot be read: {error}") from None
        return value if isinstance(value, dict) and isinstance(value.get("students"), dict) else {"students": {}}

    @contextlib.contextmanager
    def _changing(self) -> Iterator[dict]:
        """The roster, to change in place and write back, under a lock (two teachers' commands both count)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".roster.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            roster = self._read()
            yield roster
            write_json_atomically(self.path, roster)
            self.path.chmod(0o600)

    def students(self) -> list[str]:
        """The students' names, as the teacher typed them, in the order they were added."""
        return [entry["name"] for entry in self._read()["students"].values() if isinstance(entry, dict)]

    def has_teacher_secret(self) -> bool:
        return isinstance(self._read().get("teacher"), dict)

    def add(self, name: str) -> str:
        """Add a student; returns their code (shown once: only its hash is kept)."""
        shown, key = _checked_name(name)
        code = new_code()
        with self._changing() as roster:
            if key in roster["students"]:
                raise RosterError(f"{shown!r} is already on the roster (galaxy-lab roster new-code gives a new code)")
            roster["students"][key] = {"name": shown, **_hashed(code)}
        return code

    def new_code(self, name: str) -> str:
        """A new code for a student (their old code and their open sessions stop working, and the wrong codes tried
        for their name are forgotten)."""
        shown, key = _checked_name(name)
        code = new_code()
        with self._changing() as roster:
            if key not in roster["students"]:
                raise RosterError(f"{shown!r} is not on the roster")
            roster["students"][key] = {"name": roster["students"][key]["name"], **_hashed(code)}
        self.throttle.unlock(key)
        return code

    def remove(self, name: str) -> None:
        shown, key = _checked_name(name)
        with self._changing() as roster:
            if roster["students"].pop(key, None) is None:
                raise RosterError(f"{shown!r} is not on the roster")

    def new_teacher_secret(self) -> str:
        """The teacher's secret, new (the old one and the teacher's open sessions stop working)."""
        secret = new_code(SECRET_LENGTH)
        with self._changing() as roster:
            roster["teacher"] = _hashed(secret)
        self.throttle.unlock(TEACHER_NAME)
        return secret

    def sign_in(self, name: str, code: str) -> User | None:
        """The user a name and code belong to; None when they do not match (the reason is not told: a guesser
        learns nothing)."""
        if not isinstance(name, str) or not isinstance(code, str) or len(code) > 100:
            return None
        roster, key = self._read(), user_key(name)
        if key == TEACHER_NAME:
            entry, user = roster.get("teacher"), User(TEACHER_NAME, TEACHER_NAME, TEACHER)
        else:
            entry = roster["students"].get(key)
            user = User(key, entry["name"], STUDENT) if isinstance(entry, dict) else None
        return user if isinstance(entry, dict) and _matches(code, entry) else None

    def since(self, user: User) -> float | None:
        """When the code the user signed in with was made (a token older than that is void); None when the user
        is no longer on the roster."""
        roster = self._read()
        entry = roster.get("teacher") if user.is_teacher else roster["students"].get(user.id)
        return entry.get("since") if isinstance(entry, dict) else None


def _checked_name(name: str) -> tuple[str, str]:
    shown = printable(name)
    if not shown:
        raise InvalidInputError("a student's name must have a letter or a digit")
    if len(name.strip()) > MAX_NAME:
        raise InvalidInputError(f"a student's name is at most {MAX_NAME} characters")
    if user_key(shown) == TEACHER_NAME:
        raise InvalidInputError(f"{TEACHER_NAME!r} is the teacher's name on every roster; choose another")
    return shown, user_key(shown)
