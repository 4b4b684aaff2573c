"""A class without an identity provider: the teacher's roster of students, each with a code handed out by the
teacher, and the teacher's own secret; and the signed session a sign-in gives a browser.

    <runs folder>/.class/roster.json      names, and a salted scrypt hash of each code (never a code itself)
    <runs folder>/.class/session-secret   the key sessions are signed with (made on first use, readable by the
                                          server's user only)

`galaxy-lab roster ...` manages the roster on the server's machine. A sign-in (the name and the code, posted by
the sign-in form) gives the browser a session token in an HttpOnly cookie: the user, signed with the session key
and dated. A token stops working when it expires, when its student leaves the roster or gets a new code, and when
the session key is replaced.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from galaxy_core.errors import GalaxyLabError, InvalidInputError
from galaxy_core.files import write_json_atomically
from galaxy_core.people import MAX_NAME, STUDENT, TEACHER, User, printable, user_key

CLASS_FOLDER = ".class"
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are read aloud and copied by hand
CODE_LENGTH, SECRET_LENGTH = 10, 20
SESSION_SECONDS = 12 * 3600  # a school day
TEACHER_NAME = "teacher"  # the name the teacher signs in with


class RosterError(GalaxyLabError, ValueError):
    """A roster change that cannot be made (a name taken or unknown, no teacher secret yet); the message says why."""


def class_folder(runs_dir: Path) -> Path:
    return Path(runs_dir) / CLASS_FOLDER


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
        self.folder = class_folder(Path(runs_dir))
        self.path = self.folder / "roster.json"

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
        """A new code for a student (their old code and their open sessions stop working)."""
        shown, key = _checked_name(name)
        code = new_code()
        with self._changing() as roster:
            if key not in roster["students"]:
                raise RosterError(f"{shown!r} is not on the roster")
            roster["students"][key] = {"name": roster["students"][key]["name"], **_hashed(code)}
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Signed, dated session tokens for roster sign-ins, checked against the roster on every read."""

    def __init__(self, runs_dir: str | Path):
        self.roster = Roster(runs_dir)
        self.secret_path = class_folder(Path(runs_dir)) / "session-secret"

    def _key(self) -> bytes:
        """The signing key, made on first use with the server user's permissions only."""
        with contextlib.suppress(FileNotFoundError):
            return bytes.fromhex(self.secret_path.read_text().strip())
        self.secret_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            return bytes.fromhex(self.secret_path.read_text().strip())
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        return bytes.fromhex(self.secret_path.read_text().strip())

    def issue(self, user: User, now: float | None = None) -> str:
        issued = time.time() if now is None else now
        payload = _b64(json.dumps({"id": user.id, "name": user.name, "role": user.role, "at": issued}).encode())
        signature = _b64(hmac.new(self._key(), payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{signature}"

    def user(self, token: str | None, now: float | None = None) -> User | None:
        """The user of a valid token: well signed, not expired, and made since their code (still on the roster);
        else None."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 2000:
            return None
        payload, signature = token.split(".")
        expected = _b64(hmac.new(self._key(), payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(signature, expected):
            return None
        try:
            values = json.loads(_unb64(payload))
            user = User(values["id"], values["name"], values["role"])
            issued = float(values["at"])
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        since = self.roster.since(user)
        if since is None or issued < since or not issued <= now < issued + SESSION_SECONDS:
            return None
        return user
