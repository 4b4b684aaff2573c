"""The sessions a roster sign-in gives, kept on the server so that the server can end them.

    <runs folder>/.class/sessions/<digest>.json   one file a session: who, and since when; named by a digest of
                                                  its token, so the folder holds no token a reader could use

A session's token is random, kept by the browser in an HttpOnly cookie. It works while its file is there and it is
younger than SESSION_SECONDS, and its person is still on the roster with the code they signed in with: Sign out
removes the file (a copy of the cookie stops working with it), so do `galaxy-lab roster sign-out NAME`, a new code
and leaving the roster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import time
from pathlib import Path

from galaxy_core.classroom import class_folder
from galaxy_core.classroom.people import User
from galaxy_core.classroom.roster import Roster
from galaxy_core.files import write_json_atomically

SESSION_SECONDS = 12 * 3600  # a school day
TOKEN = re.compile(r"^[A-Za-z0-9_-]{40,60}$")


class Sessions:
    """The roster sign-ins' sessions of a runs folder."""

    def __init__(self, runs_dir: str | Path):
        self.roster = Roster(runs_dir)
        self.folder = class_folder(runs_dir) / "sessions"

    def _file(self, token: str) -> Path:
        return self.folder / f"{hashlib.sha256(token.encode()).hexdigest()[:40]}.json"

    def _saved(self) -> list[tuple[Path, dict]]:
        saved = []
        for path in self.folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                values = json.loads(path.read_text(encoding="utf-8"))
                saved.append((path, values if isinstance(values, dict) else {}))
        return saved

    def start(self, user: User, now: float | None = None) -> str:
        """A new session of `user`'s; returns its token (for the browser's cookie)."""
        now = time.time() if now is None else now
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, values in self._saved():  # the expired ones go as new ones come
            if not isinstance(values.get("at"), int | float) or now >= values["at"] + SESSION_SECONDS:
                path.unlink(missing_ok=True)
        token = secrets.token_urlsafe(32)
        write_json_atomically(self._file(token), {"id": user.id, "name": user.name, "role": user.role, "at": now})
        return token

    def user(self, token: str | None, now: float | None = None) -> User | None:
        """The user of a live session, else None."""
        if not isinstance(token, str) or not TOKEN.match(token):
            return None
        try:
            values = json.loads(self._file(token).read_text(encoding="utf-8"))
            user = User(values["id"], values["name"], values["role"])
            started = float(values["at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        since = self.roster.since(user)
        if since is None or started < since or not started <= now < started + SESSION_SECONDS:
            return None
        return user

    def end(self, token: str | None) -> None:
        """Sign out: the session's token stops working, wherever a copy of it is."""
        if isinstance(token, str) and TOKEN.match(token):
            self._file(token).unlink(missing_ok=True)

    def end_all(self, user_id: str) -> int:
        """End every session of a person's (galaxy-lab roster sign-out NAME); returns how many there were."""
        ended = [path for path, values in self._saved() if values.get("id") == user_id]
        for path in ended:
            path.unlink(missing_ok=True)
        return len(ended)
