"""A run's training, whatever its kind: its config and dataset, then its kind's work (galaxy_core.training.kinds),
and the run's `Outcome`.

It writes only through a run writer: the run store's `Run` in a local worker process, or a `RemoteRun` on a Ray
node that ships the same calls back to the head's store. It reports progress and returns an outcome; it never moves
the run between states (the training service records the outcome) and never raises for a failed or stopped run.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from galaxy_core.data import Dataset
from galaxy_core.settings import load_settings
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.kinds import check_run_config, run_kind
from galaxy_core.training.lifecycle import Outcome, RunState, StoppedBeforeTrainingError, failed, failure_message
from galaxy_core.training.recipe import few_labels, load_run_dataset


class RunWriter(Protocol):
    """What a training procedure needs of a run (galaxy_core.training.store.Run is the reference)."""

    best_model_path: object  # where the best checkpoint can be loaded from, once saved
    tensorboard_dir: object

    def config(self) -> dict: ...
    def report_progress(self, **fields) -> None: ...
    def append_metrics(self, record: dict) -> None: ...
    def log(self, message: str) -> None: ...
    def save_model(self, model, which: str) -> None: ...
    def save_evaluation(self, summary: dict) -> None: ...
    def save_arrays(self, name: str, **arrays: np.ndarray) -> None: ...
    def stop_requested(self) -> bool: ...


def train_run(run: RunWriter, dataset: Dataset | None = None, observers: Sequence = ()) -> Outcome:
    """Train the run here and return how it ended. `dataset`: already loaded (a remote node gets it from the head);
    by default it is loaded from the run's config. `observers`: more Keras callbacks for every fit (benchmarks
    watch a run with them)."""
    try:
        config = TrainConfig.from_dict(run.config())
        check_run_config(config)
        return _train(run, config, dataset, observers)
    except StoppedBeforeTrainingError as stop:
        with contextlib.suppress(OSError):
            run.log(str(stop))
        return Outcome(RunState.STOPPED, str(stop))
    except Exception as error:  # the run's record of what went wrong, for the user
        details = traceback.format_exc()
        with contextlib.suppress(OSError):
            run.log(details)
        return failed(failure_message(error), traceback=details)


def _train(run: RunWriter, config: TrainConfig, dataset: Dataset | None, observers: Sequence) -> Outcome:
    from galaxy_core.training.device import configure_device

    device = configure_device()
    run.append_metrics({"kind": "stage", "stage": "tensorflow ready"})  # the first minute, stage by stage
    run.report_progress(device=device.describe(), message="loading its dataset", started=time.time())
    run.log(f"device: {device.describe()}")
    if dataset is None:
        dataset = load_run_dataset(config, load_settings(), run.stop_requested)
    if config.label_changes:
        before = len(dataset.splits["train"])
        dataset = dataset.with_training_labels_changed(config.label_changes)
        run.log(
            f"{len(config.label_changes)} training labels changed ({config.label_changes_from or 'a label review'}): "
            f"{before} training images, {len(dataset.splits['train'])} kept"
        )
    if config.train_fraction < 1 or config.train_per_class:
        before = len(dataset.splits["train"])
        dataset = few_labels(dataset, config)
        kept = len(dataset.splits["train"])
        run.log(f"few labels: {kept} of {before} training images, drawn with seed {config.seed}")
    if run.stop_requested():
        raise StoppedBeforeTrainingError("stopped while loading its dataset: no model")
    run.append_metrics({"kind": "stage", "stage": "dataset loaded"})
    return run_kind(config.kind).train(run, config, dataset, observers)
