"""Paths typed by people, and writing files so that a reader never sees half of one (a temporary file beside the
target, then a rename)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from galaxy_core.errors import InvalidInputError

MAX_TYPED_PATH = 1024  # characters: far beyond any real folder, far below what file systems refuse with an error


def typed_path(text: str, what: str) -> Path:
    """A path someone typed (in the app, a settings file, a variable), checked before any file system call: no NUL
    or other control character, not empty, not absurdly long. Raises ValueError saying what is wrong with `what`."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a path, got {text!r}")
    if not text.strip():
        raise InvalidInputError(f"{what} is empty")
    if len(text) > MAX_TYPED_PATH:
        raise InvalidInputError(f"{what} is {len(text):,} characters long; at most {MAX_TYPED_PATH:,}")
    if any(not character.isprintable() for character in text):
        raise InvalidInputError(f"{what} contains a control character (a NUL byte, a newline, ...)")
    return Path(text.strip()).expanduser()


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path in `path`'s folder (same suffix, so that writers that check it are content) that
    replaces `path` when the block ends without an error, and is removed when it ends with one (a full disk
    leaves no half-written file behind, and the previous version of `path` stays)."""
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield temporary
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with replaced_atomically(path) as temporary, temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def write_json_atomically(path: Path, value: object) -> None:
    write_bytes_atomically(path, json.dumps(value, indent=2).encode())
