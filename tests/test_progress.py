"""Where a run says it is, for every run kind: never past the epochs it planned."""

import re

import pytest

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.kinds import RUN_KINDS
from galaxy_core.training.kinds.challenge_score import score_config
from galaxy_core.training.kinds.ensemble import ensemble_config
from galaxy_core.training.kinds.transfer import transfer_config
from galaxy_core.training.store import Run
from tests.helpers import tiny_config, write_private_folder

# One tiny run of each kind, every phase it has (a transfer run fine-tunes after its head, and stops early).
KIND_CONFIGS = {
    "train": lambda base, other: tiny_config(epochs=3),
    "label_review": lambda base, other: tiny_config(kind="label_review", folds=2, epochs=1),
    "seed_ensemble": lambda base, other: tiny_config(kind="seed_ensemble", ensemble_size=2, epochs=2),
    "transfer": lambda base, other: transfer_config(
        base, epochs=4, unfreeze_from="block2_conv1", fine_tune_epochs=2, early_stopping=True, patience=1
    ),
    "ensemble": lambda base, other: ensemble_config([base, other]),
    "challenge_score": lambda base, other: score_config(
        DatasetSpec.of(
            "folder", base.dataset.preprocess, path=str(write_private_folder(base.run.path.parent.parent / "private"))
        ),
        base.model,
        "spring",
        1,
        base.run.model_path("best"),
    ),
}


def test_every_kind_is_tried_here():
    assert set(KIND_CONFIGS) == set(RUN_KINDS)


def _numbers_in(line: str) -> list[tuple[int, int]]:
    """(the epoch it names, the epochs planned) for each "N of at most P" in a progress line."""
    return [(int(done), int(planned)) for done, planned in re.findall(r"(\d+) of at most (\d+)", line)]


@pytest.mark.parametrize("kind", sorted(KIND_CONFIGS))
def test_the_progress_line_never_passes_the_planned_epochs(
    kind, finished_run, finished_transfer, isolated_settings, monkeypatch
):
    seen = []
    report = Run.report_progress

    def report_and_read(run, **fields):
        report(run, **fields)
        summary = run.summary()
        seen.append((summary.epochs_done, summary.epochs_planned, summary.epoch_line(), summary.progress))

    monkeypatch.setattr(Run, "report_progress", report_and_read)
    store = RunStore(isolated_settings["runs"])
    run = new_run(store, KIND_CONFIGS[kind](finished_run.summary(), finished_transfer.summary()), MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    assert seen, "the run reported no progress"
    for done, planned, line, share in seen:
        assert done <= planned, (done, planned, line)
        assert 0 <= share <= 1
        for named, of in _numbers_in(line):
            assert of == planned and named <= planned, line


def test_a_run_past_its_last_epoch_says_so_and_not_the_next_one(isolated_settings):
    """Evaluating after its last epoch, a run's line counts the epochs it trained, not one more."""
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(epochs=2), MACHINE_TEACHER)
    run.move_to("running", pid=-1)
    run.report_progress(message="evaluating on the test split", epochs_done=2, batches_done=0)
    line = run.summary().epoch_line()
    assert _numbers_in(line) == [(2, 2)] and "epochs trained" in line, line
    run.report_progress(epochs_done=1, batches_done=3, steps_per_epoch=6)
    assert run.summary().epoch_line() == "epoch 2 of at most 2, batch 3/6"
