"""Who may do what, in one table (after JupyterHub's roles and scopes).

Each action a person can take that changes something, or that shows what is not theirs, has one row: what a student
may do and what a teacher may do, each NOBODY'S (not at all), OWN (their own runs or decisions) or ANYONE'S. The
library refuses through `require` (NotAllowedError, saying why), and the pages ask `may` which buttons to show: a
hidden button is a courtesy, never the check. Who asks is always a required argument.

Something made before runs had owners (owner None) is the machine's teacher's.
"""

from __future__ import annotations

from enum import Enum, StrEnum

from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, TEACHER, User
from galaxy_core.errors import GalaxyLabError


class NotAllowedError(GalaxyLabError, PermissionError):
    """Someone asked for something their role or their runs do not allow; the message says why."""


class Scope(Enum):
    NOBODYS = "nobody's"
    OWN = "their own"
    ANYONES = "anyone's"


class Action(StrEnum):
    """What a person may ask of the lab; the value reads in a sentence ("Ada may not stop run X")."""

    QUEUE = "queue a run"
    EXCEED_STUDENT_LIMITS = "queue beyond a student's limits (waiting runs, disk)"
    STOP = "stop"
    RENAME = "rename"
    DELETE = "delete"  # to the trash, from where it can be restored
    RESTORE = "restore"
    SEE_IN_TRASH = "see in the trash"
    EMPTY_TRASH = "empty the trash"
    DECIDE_LABELS = "decide on a doubted label"
    TRAIN_ON_DECISIONS = "train on"
    SEE_REVIEWERS = "see each reviewer's label decisions"
    SHOW_NAMES = "choose whether the board shows names"
    SEE_NAME = "see whose is"
    SEE_SERVER_SETTINGS = "see the server's settings and folders"
    SET_LESSON = "choose the run the class starts from"
    TRAIN_AGAIN = "train again"  # a run's whole config, seed and any label decisions included
    SET_UP_CHALLENGE = "set up, close, reopen or reveal a challenge"
    SUBMIT = "submit to a challenge"
    SEE_PRIVATE_FIGURES = "see a challenge's private figures before they are revealed"


NO, OWN, ANY = Scope.NOBODYS, Scope.OWN, Scope.ANYONES
# action: (a student's scope, a teacher's scope)
RIGHTS: dict[Action, tuple[Scope, Scope]] = {
    Action.QUEUE: (ANY, ANY),  # a run is queued as its asker's own
    Action.EXCEED_STUDENT_LIMITS: (NO, ANY),
    Action.STOP: (OWN, ANY),
    Action.RENAME: (OWN, ANY),
    Action.DELETE: (OWN, ANY),
    Action.RESTORE: (OWN, ANY),
    Action.SEE_IN_TRASH: (OWN, ANY),
    Action.EMPTY_TRASH: (NO, ANY),
    Action.DECIDE_LABELS: (ANY, ANY),  # each person's decisions are kept apart, under their own name
    Action.TRAIN_ON_DECISIONS: (OWN, ANY),  # a reviewer's set; the class's majority is nobody's own
    Action.SEE_REVIEWERS: (NO, ANY),
    Action.SHOW_NAMES: (NO, ANY),
    Action.SEE_NAME: (OWN, ANY),  # unless the teacher shows every name on the board
    Action.SEE_SERVER_SETTINGS: (NO, ANY),
    Action.SET_LESSON: (NO, ANY),
    Action.TRAIN_AGAIN: (OWN, ANY),  # another's config may carry their label decisions (TRAIN_ON_DECISIONS)
    Action.SET_UP_CHALLENGE: (NO, ANY),
    Action.SUBMIT: (OWN, ANY),  # a run is submitted for its owner (by a teacher, for an absent student, say)
    Action.SEE_PRIVATE_FIGURES: (NO, ANY),  # the private test set's figures, per-image answers, size
}
ROLE_COLUMN = {STUDENT: 0, TEACHER: 1}
NOBODY = object()  # the owner of a class-wide action: only ANYONE'S reaches it


def scope_of(user: User, action: Action) -> Scope:
    return RIGHTS[action][ROLE_COLUMN[user.role]]


def owns(user: User, owner_id: str | None) -> bool:
    """Whether `user` owns something of `owner_id` (None: made before runs had owners, so the teacher's)."""
    return user.id == (owner_id or MACHINE_TEACHER.id)


def may(user: User, action: Action, owner_id: str | object | None = NOBODY) -> bool:
    """Whether `user` may take `action`, on something of `owner_id`'s (leave it out for a class-wide action)."""
    scope = scope_of(user, action)
    return scope is ANY or (scope is OWN and owner_id is not NOBODY and owns(user, owner_id))


def require(user: User, action: Action, owner_id: str | object | None = NOBODY, owner_name: str = "", what: str = ""):
    """Refuse (NotAllowedError, saying why) unless `user` may take `action` on `what` (a run, named), `owner_id`'s
    (leave the owner out for a class-wide action)."""
    if may(user, action, owner_id):
        return
    target = f" {what}" if what else ""
    if scope_of(user, action) is OWN and owner_id is not NOBODY:
        raise NotAllowedError(
            f"{user.name} may not {action}{target}: it is {owner_name}'s, and only its owner or a teacher may"
        )
    raise NotAllowedError(f"only a teacher may {action}{target}; {user.name} is a {user.role}")
