"""The class: who is who (people, the roster, sessions, OpenID Connect identities), who may do what (access), the
sign-in routes and their throttling, the class board and the lesson's starting run. Its files live in the runs
folder's .class/ folder."""

from pathlib import Path


def class_folder(runs_dir: str | Path) -> Path:
    """The runs folder's class folder: the roster, sessions, sign-in throttling, the board's choices."""
    return Path(runs_dir) / ".class"
