"""Slowing down wrong sign-in codes without letting anyone keep someone else out.

Wrong codes slow down where they come from, never the name they were tried for: a name is never locked. A
source is a browser that has signed in with that name before (a signed cookie marks it, OWASP's "device cookie"),
else the client's network address. Each source gets a few wrong codes for a name free (typos), then has to wait
1, 2, 4 ... seconds (at most LONGEST_WAIT) before its next try is even checked; an address also waits once it has
sent many wrong codes for any names (guessing across the class list). A student who posts wrong codes for
`teacher` from their laptop slows only their laptop's address: the teacher, from another address or from a browser
they signed in with before, gets in at once. Behind a school's network address translation every unknown browser
shares one address: the known-browser cookie is what keeps returning people apart there, and the teacher can clear
it all (galaxy-lab roster unlock).

    <runs folder>/.class/sign-in-failures.json   recent wrong codes: (source, name, time), oldest dropped first
    <runs folder>/.class/browser-key             the key known-browser cookies are signed with (server user only)

Failures are kept in a file, not in the server's memory, so that `galaxy-lab roster unlock NAME` and `new-code`
(other processes) clear them, and a restart forgives nothing.
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
from dataclasses import dataclass
from pathlib import Path

from galaxy_core.classroom import class_folder
from galaxy_core.files import write_json_atomically

FREE_PER_NAME = 3  # wrong codes for one name from one source before any wait
FREE_PER_ADDRESS = 20  # wrong codes for any names from one address (a class behind one address mistypes too)
LONGEST_WAIT = 60.0  # seconds
FORGET_AFTER = 3600.0  # seconds after which a wrong code no longer counts
MAX_FAILURES_KEPT = 5000
KNOWN_BROWSER_SECONDS = 180 * 86400


def wait_after(failures: int, free: int) -> float:
    """Seconds to wait after the last of `failures` wrong codes when `free` of them are allowed without a wait."""
    excess = failures - free
    return 0.0 if excess <= 0 else min(2.0 ** (excess - 1), LONGEST_WAIT)


@dataclass(frozen=True)
class Attempt:
    """A sign-in: the name tried (its key), the client's address, and the known browser's id when the request
    carries a valid known-browser cookie for that name."""

    name: str
    address: str
    browser: str | None = None

    @property
    def source(self) -> str:
        return f"browser {self.browser}" if self.browser else f"address {self.address}"

    def describe_source(self) -> str:
        return "this browser" if self.browser else "your network address"


class SignInThrottle:
    """The recent wrong codes of a runs folder's sign-in, and the waits they impose."""

    def __init__(self, runs_dir: str | Path):
        self.folder = class_folder(runs_dir)
        self.path = self.folder / "sign-in-failures.json"

    def _read(self, now: float) -> list[list]:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        failures = saved.get("failures") if isinstance(saved, dict) else None
        if not isinstance(failures, list):
            return []
        return [
            entry
            for entry in failures
            if isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[2], int | float)
            and now - entry[2] < FORGET_AFTER
        ]

    @contextlib.contextmanager
    def _changing(self, now: float) -> Iterator[list[list]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".sign-in-failures.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            failures = self._read(now)
            yield failures
            write_json_atomically(self.path, {"failures": failures[-MAX_FAILURES_KEPT:]})
            self.path.chmod(0o600)

    def wait(self, attempt: Attempt, now: float | None = None) -> float:
        """Seconds before `attempt` may be checked (0: now)."""
        now = time.time() if now is None else now
        failures = self._read(now)
        for_name = [at for source, name, at in failures if source == attempt.source and name == attempt.name]
        waits = [wait_after(len(for_name), FREE_PER_NAME) - (now - max(for_name, default=now))]
        if attempt.browser is None:
            from_address = [at for source, _, at in failures if source == attempt.source]
            waits.append(wait_after(len(from_address), FREE_PER_ADDRESS) - (now - max(from_address, default=now)))
        return max(0.0, *waits)

    def failed(self, attempt: Attempt, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._changing(now) as failures:
            failures.append([attempt.source, attempt.name, now])

    def succeeded(self, attempt: Attempt) -> None:
        """The right code: this source's wrong codes for this name no longer count."""
        with self._changing(time.time()) as failures:
            failures[:] = [entry for entry in failures if entry[:2] != [attempt.source, attempt.name]]

    def unlock(self, name: str | None = None) -> int:
        """Forget the wrong codes tried for `name` (a name's key), from anywhere; all of them without a name.
        Returns how many were forgotten."""
        with self._changing(time.time()) as failures:
            kept = [entry for entry in failures if name is not None and entry[1] != name]
            forgotten = len(failures) - len(kept)
            failures[:] = kept
        return forgotten


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class KnownBrowsers:
    """Signed cookies that mark a browser as one a name signed in from, so that its sign-ins are throttled on their
    own and not with its network address's."""

    def __init__(self, runs_dir: str | Path):
        self.key_path = class_folder(runs_dir) / "browser-key"

    def _key(self) -> bytes:
        """The signing key, made on first use with the server user's permissions only."""
        with contextlib.suppress(FileNotFoundError):
            return bytes.fromhex(self.key_path.read_text().strip())
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            return bytes.fromhex(self.key_path.read_text().strip())
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        return bytes.fromhex(self.key_path.read_text().strip())

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key(), payload.encode(), hashlib.sha256).digest())

    def cookie(self, name: str, now: float | None = None) -> str:
        """A new browser's cookie for `name` (a name's key)."""
        issued = time.time() if now is None else now
        payload = _b64(json.dumps({"name": name, "browser": secrets.token_hex(8), "at": issued}).encode())
        return f"{payload}.{self._sign(payload)}"

    def browser(self, cookie: str | None, name: str, now: float | None = None) -> str | None:
        """The browser's id when `cookie` is a valid known-browser cookie for `name`; else None."""
        if not isinstance(cookie, str) or cookie.count(".") != 1 or len(cookie) > 500:
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            browser, issued, named = str(values["browser"]), float(values["at"]), values["name"]
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        return browser if named == name and issued <= now < issued + KNOWN_BROWSER_SECONDS else None
