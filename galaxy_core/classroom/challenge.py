"""A class challenge, after Kaggle's in-class competitions and Codabench's hidden test labels: a dataset the class
trains on, a private test set nobody sees until the teacher reveals it, rules, and each student's submissions.

    <runs>/.class/challenges/<id>/challenge.json       title, dataset, private folder, rules, open or closed, revealed
    <runs>/.class/challenges/<id>/submissions/<n>.json one per submission: whose, which run, when, its scoring run
    <runs>/.class/scoring/                             the scoring runs: a run store of its own, which no page lists

The private folder is a folder of class folders on the server, outside every data root (so no page, link or menu
can open it). A submission is scored by a run of the `challenge_score` kind in the scoring store, queued like any
run and fair-shared between students; its figures and per-image answers stay there. What a student may see of a
challenge is galaxy_core.classroom.submissions's to say; this module only keeps the records.
"""

from __future__ import annotations

import fcntl
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from galaxy_core.classroom import class_folder
from galaxy_core.classroom.access import Action, require
from galaxy_core.classroom.people import User, printable
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.data.images import SUPPORTED_EXTENSIONS
from galaxy_core.errors import GalaxyLabError, InvalidInputError
from galaxy_core.files import typed_path, write_json_atomically

DAY_SECONDS = 24 * 3600
CHALLENGE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,80}")
MAX_TITLE = 80


class ChallengeNotFoundError(GalaxyLabError, LookupError):
    """No challenge of that id."""


@dataclass(frozen=True)
class ChallengeRules:
    """What a submitted run may use, how often a student may submit, until when, and when the private figures
    show. None: no limit."""

    max_parameters: int | None = None
    max_epochs: int | None = None
    max_training_minutes: float | None = None
    submissions_per_day: int | None = 3  # in any 24 hours
    submissions_in_all: int | None = 10
    deadline: float | None = None  # seconds since the epoch
    reveal_at_deadline: bool = False  # else only when the teacher reveals them

    def problems(self) -> list[str]:
        """What is wrong with these rules, in words."""
        found = []
        for name in ("max_parameters", "max_epochs", "submissions_per_day", "submissions_in_all"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                found.append(f"{name} must be a whole number of at least 1, or no limit; got {value!r}")
        minutes = self.max_training_minutes
        if minutes is not None and (not _is_number(minutes) or minutes <= 0):
            found.append(f"max_training_minutes must be above 0, or no limit; got {minutes!r}")
        if self.deadline is not None and not _is_number(self.deadline):
            found.append(f"the deadline must be a time, got {self.deadline!r}")
        if self.reveal_at_deadline and self.deadline is None:
            found.append("the private figures can show at the deadline only when there is one")
        return found


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Challenge:
    id: str
    title: str
    dataset: dict  # the DatasetSpec students train on, as config.json keeps one
    private_folder: str
    class_names: tuple[str, ...]  # the private set's, which a submitted run answers with, in this order
    private_images: int  # for the teacher
    rules: ChallengeRules = field(default_factory=ChallengeRules)
    created: float = 0.0
    by: str = ""
    closed: bool = False
    revealed: bool = False

    @property
    def dataset_spec(self) -> DatasetSpec:
        return DatasetSpec.from_dict(self.dataset)

    def past_deadline(self, now: float) -> bool:
        return self.rules.deadline is not None and now >= self.rules.deadline

    def open_for_submissions(self, now: float) -> bool:
        return not self.closed and not self.past_deadline(now)

    def private_figures_out(self, now: float) -> bool:
        """Whether everyone may see the private figures: the teacher revealed them, or the deadline they were to
        show at has passed."""
        return self.revealed or (self.rules.reveal_at_deadline and self.past_deadline(now))

    def private_spec(self, like: DatasetSpec) -> DatasetSpec:
        """The private folder read as `like` reads its images (size, crop, channels), every image in one split."""
        return DatasetSpec.of("folder", like.preprocess, path=self.private_folder, val_fraction=0.0, test_fraction=0.0)

    def to_dict(self) -> dict:
        return {**asdict(self), "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, values: dict) -> Challenge:
        values = dict(values)
        rules = ChallengeRules(**values.pop("rules", {}))
        return cls(**{**values, "class_names": tuple(values.get("class_names", ())), "rules": rules})


@dataclass(frozen=True)
class Submission:
    number: int  # 1, 2 ... within the challenge
    student_id: str
    student_name: str
    run_id: str
    run_name: str
    submitted: float
    public: float | None  # the run's test balanced accuracy on the dataset's (public) test split
    public_interval: tuple[float, float] | None
    scoring_run: str | None = None  # in the scoring store, once queued

    @classmethod
    def from_dict(cls, values: dict) -> Submission:
        interval = values.get("public_interval")
        return cls(**{**values, "public_interval": tuple(interval) if interval else None})


def challenges_folder(runs_dir) -> Path:
    return class_folder(runs_dir) / "challenges"


def scoring_root(runs_dir) -> Path:
    """The run store of the scoring runs (kept apart from the class's runs: no page lists them)."""
    return class_folder(runs_dir) / "scoring"


def _folder(runs_dir, challenge_id: str) -> Path:
    if not isinstance(challenge_id, str) or not CHALLENGE_ID.fullmatch(challenge_id):
        raise ChallengeNotFoundError(f"{challenge_id!r} is not a challenge id")
    return challenges_folder(runs_dir) / challenge_id


def load_challenge(runs_dir, challenge_id: str) -> Challenge:
    try:
        values = json.loads((_folder(runs_dir, challenge_id) / "challenge.json").read_text(encoding="utf-8"))
        return Challenge.from_dict(values)
    except FileNotFoundError:
        raise ChallengeNotFoundError(f"there is no challenge {challenge_id!r}") from None
    except (OSError, ValueError, TypeError) as error:
        raise ChallengeNotFoundError(f"challenge {challenge_id!r} cannot be read: {error}") from None


def list_challenges(runs_dir) -> list[Challenge]:
    """Every readable challenge, the newest first."""
    try:
        ids = [path.name for path in challenges_folder(runs_dir).iterdir() if CHALLENGE_ID.fullmatch(path.name)]
    except OSError:
        return []
    found = []
    for challenge_id in ids:
        try:
            found.append(load_challenge(runs_dir, challenge_id))
        except ChallengeNotFoundError:
            continue
    return sorted(found, key=lambda challenge: -challenge.created)


def save_challenge(runs_dir, challenge: Challenge) -> None:
    folder = _folder(runs_dir, challenge.id)
    (folder / "submissions").mkdir(parents=True, exist_ok=True)
    write_json_atomically(folder / "challenge.json", challenge.to_dict())


def check_private_folder(text: str, data_roots) -> Path:
    """The private folder someone typed, resolved; InvalidInputError unless it is a folder outside every data root
    and the downloads folder (and holding none), and none of its images is a link into one, so that no page, link
    or menu of the lab can open them."""
    folder = typed_path(text, "the private test folder").resolve()
    if not folder.is_dir():
        raise InvalidInputError(f"the private test folder {folder} is not a folder on the server")
    roots = [Path(root).resolve() for root in data_roots]
    for root in roots:
        if folder == root or root in folder.parents or folder in root.parents:
            raise InvalidInputError(
                f"the private test folder {folder} is inside the data root {root}, or holds it, and the class can "
                "browse a data root: keep it outside every data root"
            )
    for image in folder.rglob("*"):
        target = image.resolve()
        root = next((root for root in roots if root in target.parents), None)
        if root is not None:
            raise InvalidInputError(
                f"the private image {image.relative_to(folder)} is a link to {target}, inside the data root {root}, "
                "which the class can browse: link to a source folder outside every data root"
            )
    return folder


def carve_private_share(source: Path, share: float, public: Path, private: Path, seed: int = 0) -> tuple[int, int]:
    """A challenge's two folders from a folder dataset: `public` (for a data root) with every image of `source` but
    `share` of each class of its test split (of its class folders, without split folders), and `private` (for
    outside the data roots) with that share. Images are linked, not copied; other files (a labels.csv) are left
    out, since they may name the private images. Returns (public images, private images)."""
    if not 0 < share < 1:
        raise InvalidInputError(f"the private share must be between 0 and 1, got {share}")
    source = Path(source).resolve()
    for folder in (public, private):
        if Path(folder).exists():
            raise InvalidInputError(f"{folder} exists already: give a new folder")
    test = next((source / name for name in ("test", "testing") if (source / name).is_dir()), source)
    classes = sorted(path for path in test.iterdir() if path.is_dir() and path.name not in ("train", "val"))
    if len(classes) < 2:
        raise InvalidInputError(f"{test} must hold one folder per class (at least 2)")
    rng, kept_apart = np.random.default_rng(seed), set()
    for folder in classes:
        images = sorted(path for path in folder.iterdir() if path.suffix.lower() in SUPPORTED_EXTENSIONS)
        count = max(1, round(share * len(images))) if images else 0
        kept_apart.update(images[index] for index in rng.permutation(len(images))[:count])
    counts = [0, 0]
    for image in sorted(path for path in source.rglob("*") if path.suffix.lower() in SUPPORTED_EXTENSIONS):
        apart = image in kept_apart
        target = (Path(private) / image.relative_to(test)) if apart else Path(public) / image.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(image)
        counts[apart] += 1
    return counts[0], counts[1]


def set_up_challenge(
    runs_dir, title: str, dataset: DatasetSpec, private_folder: str, rules: ChallengeRules, user: User, settings
) -> Challenge:
    """A new open challenge (a teacher's): InvalidInputError saying what is wrong with its title, rules or private
    folder (outside the data roots, a folder of class folders whose classes are the dataset's). Reads the private
    images once to count them, without the image cache."""
    require(user, Action.SET_UP_CHALLENGE)
    title = printable(title, MAX_TITLE)
    problems = ([] if title else ["a challenge needs a title"]) + rules.problems()
    if problems:
        raise InvalidInputError("; ".join(problems))
    folder = check_private_folder(private_folder, (*settings.data_roots, settings.download_dir))
    private = create_dataset(
        DatasetSpec.of("folder", dataset.preprocess, path=str(folder), val_fraction=0.0, test_fraction=0.0)
    )
    public_classes = create_dataset(dataset, cache_dir=settings.cache_dir).class_names
    if tuple(private.class_names) != tuple(public_classes):
        raise InvalidInputError(
            f"the private test folder's classes ({', '.join(private.class_names)}) are not the dataset's "
            f"({', '.join(public_classes)}): a run answers with the dataset's, in that order"
        )
    challenge = Challenge(
        id=_new_id(title),
        title=title,
        dataset=dataset.to_dict(),
        private_folder=str(folder),
        class_names=tuple(private.class_names),
        private_images=sum(len(split) for split in private.splits.values()),
        rules=rules,
        created=time.time(),
        by=user.id,
    )
    save_challenge(runs_dir, challenge)
    return challenge


def _new_id(title: str) -> str:
    """A challenge's id: its title in lower-case letters and digits, and a random tag."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:40] or "challenge"
    return f"{slug}-{secrets.token_hex(3)}"


def change_challenge(runs_dir, challenge_id: str, user: User, **changes) -> Challenge:
    """The challenge with `changes` (closed, revealed, rules ...) kept; a teacher's."""
    require(user, Action.SET_UP_CHALLENGE)
    with challenge_lock(runs_dir, challenge_id):
        challenge = replace(load_challenge(runs_dir, challenge_id), **changes)
        problems = challenge.rules.problems()
        if problems:
            raise InvalidInputError("; ".join(problems))
        save_challenge(runs_dir, challenge)
    return challenge


def copy_challenge(runs_dir, challenge_id: str, title: str, user: User, deadline: float | None = None) -> Challenge:
    """A new open challenge with another's dataset, private folder and rules, and no submissions (next year's
    class); `deadline` replaces the old one's."""
    require(user, Action.SET_UP_CHALLENGE)
    old = load_challenge(runs_dir, challenge_id)
    title = printable(title, MAX_TITLE) or f"{old.title} (copy)"
    rules = replace(old.rules, deadline=deadline, reveal_at_deadline=old.rules.reveal_at_deadline and bool(deadline))
    new = replace(
        old, id=_new_id(title), title=title, rules=rules, created=time.time(), by=user.id,
        closed=False, revealed=False,
    )  # fmt: skip
    save_challenge(runs_dir, new)
    return new


@contextmanager
def challenge_lock(runs_dir, challenge_id: str) -> Iterator[None]:
    """Held by whoever counts and adds submissions, or changes the challenge (two submissions at once cannot both
    take a student's last one)."""
    folder = _folder(runs_dir, challenge_id)
    if not (folder / "challenge.json").exists():
        raise ChallengeNotFoundError(f"there is no challenge {challenge_id!r}")
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def submissions_of(runs_dir, challenge_id: str) -> list[Submission]:
    """Every submission to the challenge, in the order they were made (unreadable records left out)."""
    folder = _folder(runs_dir, challenge_id) / "submissions"
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            found.append(Submission.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(found, key=lambda submission: submission.number)


def save_submission(runs_dir, challenge_id: str, submission: Submission) -> None:
    folder = _folder(runs_dir, challenge_id) / "submissions"
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomically(folder / f"{submission.number}.json", asdict(submission))


def remove_submission(runs_dir, challenge_id: str, number: int) -> None:
    """Forget a submission whose scoring could not be queued: it does not count."""
    (_folder(runs_dir, challenge_id) / "submissions" / f"{number}.json").unlink(missing_ok=True)


def submissions_left(challenge: Challenge, theirs: list[Submission], now: float) -> tuple[int | None, str]:
    """(how many more a student may submit now, None: no limit; the rule that says so, in words)."""
    rules, counts = challenge.rules, []
    if rules.submissions_in_all is not None:
        counts.append((rules.submissions_in_all - len(theirs), f"{rules.submissions_in_all} submissions in all"))
    if rules.submissions_per_day is not None:
        today = sum(now - submission.submitted < DAY_SECONDS for submission in theirs)
        counts.append((rules.submissions_per_day - today, f"{rules.submissions_per_day} in any 24 hours"))
    if not counts:
        return None, ""
    left, rule = min(counts)
    return max(0, left), rule
