"""Typed records of a run, as pages, the CLI and benchmarks read them: what its config, status and progress say,
checked field by field. A field of the wrong type reads as missing, never as a crash."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from galaxy_core.data import DatasetSpec, check_spec
from galaxy_core.training.config import DEFAULT_KIND, nested_options
from galaxy_core.training.lifecycle import RunState


@dataclass(frozen=True)
class KindTraits:
    """What readers of a run need to know of its kind: each kind declares its own when it registers
    (galaxy_core.training.kinds), so that no page, board or menu names a kind."""

    answers_as_one: bool = False  # its model averages several networks' answers (an ensemble)
    reviews_labels: bool = False  # a label review: its results are doubted labels; its fold models are for those
    starts_from: str | None = None  # the option naming the run its network starts from, if any
    ones_own: bool = True  # one person's network, on the class board
    paces_its_recipe: bool = False  # its epochs' pace is its recipe's (what a duration estimate may use)
    # (config, number of members) -> what each of its members is called, when its members are not runs
    member_names: Callable[[dict, int], list[str]] | None = None
    # (its options) -> whether a run of it takes seconds and little memory (a head on cached features, an
    # ensemble): it trains in a light slot (max_light_runs) beside the ordinary ones
    light: Callable[[dict], bool] | None = None


# The traits of each registered kind, by name (filled as the kinds register; an unknown kind has the defaults).
KIND_TRAITS: dict[str, KindTraits] = {}
PLAIN_TRAITS = KindTraits()


class RunFolder(Protocol):
    """What a summary needs of its run's folder (galaxy_core.training.store.Run, which the store hands in: the
    records sit below the store, and never import it)."""

    @property
    def id(self) -> str: ...

    @property
    def best_model_path(self) -> Path: ...

    @property
    def final_model_path(self) -> Path: ...


DEFAULT_MESSAGES = {
    RunState.QUEUED: "waiting for a training slot",
    RunState.RUNNING: "training",
    RunState.FINISHED: "finished",
    RunState.FAILED: "failed",
    RunState.STOPPED: "stopped",
    RunState.INTERRUPTED: "interrupted",
}


def number(value) -> float | None:
    """A finite number from a JSON field, else None (a bool, a string or NaN is not a figure)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def whole(value) -> int | None:
    found = number(value)
    return int(found) if found is not None and found == int(found) else None


def text(value) -> str | None:
    return value if isinstance(value, str) else None


def valid_pid(value) -> int | None:
    """A process id from a status file: a whole number > 1 (0, -1 and 1 would address process groups or init)."""
    pid = whole(value)
    return pid if pid is not None and pid > 1 else None


def state_of(status: dict) -> RunState:
    try:
        return RunState(status.get("state"))
    except ValueError:
        raise ValueError(f"status.json has no known state: {status.get('state')!r}") from None


def short_run_id(run_id: str) -> str:
    """The time of day and the random tag of a run id: "20261204-051206-custom_cnn-95c7" -> "0512-95c7"."""
    parts = run_id.split("-")
    return f"{parts[1][:4]}-{parts[-1]}" if len(parts) >= 3 and len(parts[1]) >= 4 else run_id


def epoch_records(records: list[dict]) -> list[dict]:
    """The lines of a run's metrics for finished epochs (an epoch cut short by a stop is "partial_epoch")."""
    return [record for record in records if record.get("kind") == "epoch"]


def next_network_epochs(records: list[dict]) -> list[int]:
    """The epochs after which the run built another network and trained it (a seed ensemble's next network): where
    its curves start again from an untrained network."""
    starts, done = [], 0
    for record in records:
        if record.get("kind") == "epoch" and isinstance(record.get("epoch"), int):
            done = record["epoch"]
        elif record.get("kind") == "stage" and record.get("stage") == "model built" and done:
            starts.append(done)
    return starts


def checked_config(config: dict) -> DatasetSpec:
    """The dataset spec of a run's config, if the config says what every reader relies on (a dataset spec and a
    model name); else ValueError."""
    problems, spec = [], None
    try:
        spec = check_spec(DatasetSpec.from_dict(config.get("dataset")))
    except ValueError as error:
        problems.append(f"its dataset: {error}")
    if not isinstance(config.get("model"), str):
        problems.append(f"its model is {config.get('model')!r}, not a model name")
    if "epochs" in config and whole(config["epochs"]) is None:
        problems.append(f"its epochs are {config['epochs']!r}")
    if problems:
        raise ValueError("config.json: " + "; ".join(problems))
    return spec


def merged_status(status: dict, progress: dict) -> dict:
    """What is known of a run: the service's status over the progress its training reported. While the run
    trains, its progress says what it is doing; once it has ended, the service's message says how."""
    merged = {**progress, **{key: value for key, value in status.items() if value is not None}}
    training = state_of(status) is RunState.RUNNING and text(progress.get("message"))
    merged["message"] = progress["message"] if training else status.get("message")
    return merged


@dataclass(frozen=True)
class RunSummary:
    """What pages, the CLI and benchmarks know of a run: its config, status and progress, typed and checked."""

    run: RunFolder  # a galaxy_core.training.store.Run
    config: dict
    dataset: DatasetSpec  # the config's, parsed and checked once
    state: RunState
    message: str  # one line: what is happening, or why and how it ended
    epochs_done: int  # finished epochs
    epochs_planned: int | None  # counted once, when the run was queued
    best_val_balanced_accuracy: float | None
    test_accuracy: float | None
    test_balanced_accuracy: float | None
    test_balanced_accuracy_tta: float | None
    class_names: tuple[str, ...]
    parameters: int | None
    executor: str | None
    node: str | None
    device: str | None
    pid: int | None
    pid_start: int | None
    created: float | None
    dispatched: float | None  # when the training service handed it to an executor
    started: float | None  # when its training procedure began
    finished: float | None
    eta_seconds: float | None
    batches_done: int | None  # in the epoch under way
    steps_per_epoch: int | None
    error: str | None
    traceback: str | None
    owner_id: str | None  # None: queued before runs had owners, so the teacher's
    owner_name: str
    owner_is_teacher: bool
    title: str  # its owner's words for it ("deeper net, no augmentation"), or ""
    train_images: int | None  # the images it trained on (after any review's or few labels' cut), once loaded

    @classmethod
    def read(cls, run: RunFolder, config: dict, status: dict, title: str = "") -> RunSummary:
        """The summary of a run's config (its kind's options nested, whenever it was queued), (merged) status and
        title."""
        config = nested_options(config)
        dataset, state = checked_config(config), state_of(status)
        names = status.get("class_names")
        error = text(status.get("error"))
        return cls(
            run=run,
            config=config,
            dataset=dataset,
            state=state,
            message=text(status.get("message")) or (f"failed: {error}" if error else DEFAULT_MESSAGES[state]),
            epochs_done=whole(status.get("epochs_done")) or 0,
            epochs_planned=whole(status.get("epochs_planned")),
            best_val_balanced_accuracy=number(status.get("best_val_balanced_accuracy")),
            test_accuracy=number(status.get("test_accuracy")),
            test_balanced_accuracy=number(status.get("test_balanced_accuracy")),
            test_balanced_accuracy_tta=number(status.get("test_balanced_accuracy_tta")),
            class_names=tuple(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else (),
            parameters=whole(status.get("parameters")),
            executor=text(status.get("executor")),
            node=text(status.get("node")),
            device=text(status.get("device")),
            pid=valid_pid(status.get("pid")),
            pid_start=whole(status.get("pid_start")),
            created=number(config.get("created")),
            dispatched=number(status.get("dispatched")),
            started=number(status.get("started")),
            finished=number(status.get("finished")),
            eta_seconds=number(status.get("eta_seconds")),
            batches_done=whole(status.get("batches_done")),
            steps_per_epoch=whole(status.get("steps_per_epoch")),
            error=error,
            traceback=text(status.get("traceback")),
            owner_id=text(config.get("owner")),
            owner_name=text(config.get("owner_name")) or "the teacher",
            owner_is_teacher=config.get("owner_role", "teacher") == "teacher",
            title=title,
            train_images=whole((status.get("dataset_sizes") or {}).get("train"))
            if isinstance(status.get("dataset_sizes"), dict)
            else None,
        )

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def name(self) -> str:
        """What to call the run: its title beside a short form of its id ("deeper net · 0512-9f3a")."""
        return f"{self.title} · {self.short_id}" if self.title else self.short_id

    @property
    def short_id(self) -> str:
        return short_run_id(self.id)

    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def options(self) -> dict:
        """Its kind's options as its config keeps them ({} for a kind without)."""
        options = self.config.get("options")
        return options if isinstance(options, dict) else {}

    @property
    def seed(self) -> int | None:
        """The seed it trained with (drawn when it was queued, unless given)."""
        return whole(self.config.get("seed"))

    @property
    def kind(self) -> str:
        return self.config.get("kind", DEFAULT_KIND)

    @property
    def traits(self) -> KindTraits:
        return KIND_TRAITS.get(self.kind, PLAIN_TRAITS)

    @property
    def base_run(self) -> str | None:
        """The id of the run this one's network started from; None for a run that started from scratch."""
        field = self.traits.starts_from
        return text(self.options.get(field)) if field else None

    @property
    def is_label_review(self) -> bool:
        return self.traits.reviews_labels

    @property
    def is_light(self) -> bool:
        """A run of seconds, which trains in a light slot (KindTraits.light)."""
        return self.traits.light is not None and bool(self.traits.light(self.options))

    @property
    def is_ensemble(self) -> bool:
        """Chosen runs answering as one, or a run that trained several networks of one recipe, answering as one."""
        return self.traits.answers_as_one

    @property
    def has_test_results(self) -> bool:
        return self.test_balanced_accuracy is not None

    @property
    def has_model(self) -> bool:
        """The run ended and kept a model (a best checkpoint or a final model) to evaluate or classify with."""
        return not self.state.active and (self.run.best_model_path.is_file() or self.run.final_model_path.is_file())

    @property
    def training_minutes(self) -> float | None:
        """Minutes from the start of its training procedure to its end; None until it has ended."""
        return (self.finished - self.started) / 60 if self.finished and self.started else None

    def batch_progress(self) -> str:
        """ ", batch 12/40" while an epoch is under way; "" otherwise."""
        if self.state is RunState.RUNNING and self.batches_done and self.steps_per_epoch:
            return f", batch {self.batches_done}/{self.steps_per_epoch}"
        return ""

    def epoch_line(self) -> str:
        """Where its training is, never past its plan: "epoch 4 of at most 8, batch 12/40" while an epoch trains,
        else "3 of at most 8 epochs trained" (between epochs, and after the last while it is tested)."""
        planned = self.epochs_planned if self.epochs_planned is not None else "?"
        batch = self.batch_progress()
        if batch and (self.epochs_planned is None or self.epochs_done < self.epochs_planned):
            return f"epoch {self.epochs_done + 1} of at most {planned}{batch}"
        return f"{self.epochs_done} of at most {planned} epochs trained"

    def epochs_text(self) -> str:
        """ "3/8" epochs, with the batches of the epoch under way: "3/8, batch 12/40"."""
        if self.epochs_planned == 0:  # an ensemble: it trains nothing
            return "no training"
        return f"{self.epochs_done}/{self.epochs_planned or '?'}" + self.batch_progress()

    @property
    def progress(self) -> float:
        """The share of its planned epochs the run has done, batches of the current epoch included."""
        planned = self.epochs_planned or 1
        within = self.batches_done / self.steps_per_epoch if self.batches_done and self.steps_per_epoch else 0.0
        return min(1.0, (self.epochs_done + within) / planned)
