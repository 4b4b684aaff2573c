"""The class's starting point: a trained run the teacher marks, that every student's Train page starts from (a new
head on its network: the lesson's cut, few labels or fine-tuning are the student's choices). Kept in the runs
folder's .class/lesson.json; only a teacher sets or clears it."""

from __future__ import annotations

import json
import time

from galaxy_core.classroom import class_folder
from galaxy_core.classroom.access import Action, require
from galaxy_core.classroom.people import User
from galaxy_core.files import write_json_atomically
from galaxy_core.training import RunStore, RunSummary
from galaxy_core.training.kinds.transfer import base_model_file, transfer_config

LESSON_FILE = "lesson.json"


def lesson_base_id(runs_dir) -> str | None:
    """The id of the run the teacher marked as the class's starting point; None when there is none."""
    try:
        base = json.loads((class_folder(runs_dir) / LESSON_FILE).read_text()).get("base_run")
    except (OSError, ValueError, AttributeError):
        return None
    return base if isinstance(base, str) and base else None


def lesson_base(store: RunStore) -> RunSummary | None:
    """The class's starting run, if one is marked and it can still be started from (not deleted since)."""
    run_id = lesson_base_id(store.root)
    if run_id is None:
        return None
    try:
        summary = store.get(run_id).summary()
    except (LookupError, OSError, ValueError):
        return None
    return summary if summary.has_model else None


def set_lesson_base(store: RunStore, run_id: str | None, user: User) -> None:
    """Mark `run_id` as the class's starting point (None: no starting point); a teacher's choice. InvalidInputError
    when the run cannot be started from, saying why (a label review, an ensemble, one still training ...)."""
    require(user, Action.SET_LESSON)
    if run_id is not None:
        base_model_file(store, transfer_config(store.get(run_id).summary()))  # refuses a run that cannot be a base
    class_folder(store.root).mkdir(parents=True, exist_ok=True)
    write_json_atomically(
        class_folder(store.root) / LESSON_FILE, {"base_run": run_id, "by": user.id, "since": time.time()}
    )
