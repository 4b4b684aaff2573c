"""Writing files so that a reader never sees half of one: a temporary file beside the target, then a rename."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
