"""Whose name a person sees beside a run: their own, every name for a teacher, and every name for everyone once the
teacher shows them (the teacher's choice, kept in the runs folder's .class/board.json); else "a classmate"."""

from __future__ import annotations

import json

from galaxy_core.classroom import class_folder
from galaxy_core.classroom.access import Action, may, require
from galaxy_core.classroom.people import User
from galaxy_core.files import write_json_atomically


def board_shows_names(runs_dir) -> bool:
    """Whether students see their classmates' names on the board (the teacher's choice; no by default)."""
    try:
        return json.loads((class_folder(runs_dir) / "board.json").read_text()).get("show_names") is True
    except (OSError, ValueError, AttributeError):
        return False


def show_names_on_board(runs_dir, show: bool, user: User) -> None:
    require(user, Action.SHOW_NAMES)
    class_folder(runs_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomically(class_folder(runs_dir) / "board.json", {"show_names": bool(show), "by": user.id})


def visible_name(owner_id: str | None, owner_name: str, viewer: User, show_names: bool, classmate: str) -> str:
    """A run's owner as `viewer` may see them: their own name, every name for a teacher or when the teacher shows
    names, else `classmate` ("a classmate", "classmate 3")."""
    return owner_name if show_names or may(viewer, Action.SEE_NAME, owner_id) else classmate
