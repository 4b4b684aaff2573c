"""Fixtures: isolated settings per test, a run trained once per session, the real GZ1 folder. Helpers: helpers.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from galaxy_core.classroom.people import MACHINE_TEACHER
from tests.helpers import GZ1_PATH, stop_training_service

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def _default_dataset_entry(tmp_path_factory) -> Path:
    """The built-in synthetic dataset's cache entry, rendered once per session by this checkout's code (a test
    that renders it again spends 3-4 s)."""
    from galaxy_core.data import DatasetSpec, create_dataset

    cache = tmp_path_factory.mktemp("default-dataset")
    create_dataset(DatasetSpec.of("synthetic"), cache_dir=cache)
    return next((cache / "datasets").glob("*.npz"))


@pytest.fixture(autouse=True)
def isolated_settings(request, tmp_path_factory, monkeypatch) -> dict[str, Path]:
    """Every test gets its own cache, runs and data folders, and no settings file from the checkout. Its cache
    holds the default dataset already (a link to the session's entry: the cache replaces its files, never writes
    into them), unless the test is marked `empty_cache`."""
    base = tmp_path_factory.mktemp("lab")
    folders = {name: base / name for name in ("cache", "runs", "data")}
    for folder in folders.values():
        folder.mkdir()
    if request.node.get_closest_marker("empty_cache") is None:
        entry = request.getfixturevalue("_default_dataset_entry")
        (folders["cache"] / "datasets").mkdir()
        os.link(entry, folders["cache"] / "datasets" / entry.name)
    settings_file = base / "galaxy-lab.toml"
    settings_file.write_text("")
    monkeypatch.setenv("GALAXY_LAB_SETTINGS", str(settings_file))
    monkeypatch.setenv("GALAXY_LAB_CACHE_DIR", str(folders["cache"]))
    monkeypatch.setenv("GALAXY_LAB_RUNS_DIR", str(folders["runs"]))
    monkeypatch.setenv("GALAXY_LAB_DATA_ROOTS", str(folders["data"]))
    for name in ("UPLOAD_LIMIT_MB", "DEFAULT_DATASET", "MAX_CONCURRENT_RUNS", "STOP_GRACE_SECONDS", "EXECUTOR"):
        monkeypatch.delenv(f"GALAXY_LAB_{name}", raising=False)
    yield folders
    stop_training_service(folders["runs"])


@pytest.fixture(autouse=True)
def probes_that_never_finish(request, monkeypatch) -> None:
    """The Train page probes a recipe's throughput in a process of its own; a test of a page sees it still
    measuring, unless it fills the cache itself, and the suite's CPU goes to the tests (test_estimate.py tests the
    real probe)."""
    if request.node.get_closest_marker("throughput_probe") is None:
        from galaxy_core.training import estimate

        still_measuring = estimate.Measuring(seconds_so_far=0.0, expected_seconds=20.0, waiting=False)
        monkeypatch.setattr(estimate, "measure", lambda config, *_: still_measuring)


# A tiny model on a few synthetic galaxies: trained once per test session, copied into each test's runs folder.
TRAINED_RUN_CONFIG = {
    "dataset": {"name": "synthetic", "num_images": 90, "image_size": 32},
    "model": "custom_cnn",
    "model_options": {"blocks": 2, "filters": 8, "convs_per_block": 1},
    "epochs": 2,
    "batch_size": 16,
    "early_stopping": False,
}


def _run_template(tmp_path_factory, name: str, make_config, inputs: tuple = ()) -> Path:
    """A run of `make_config(summaries of inputs)` trained once, in a folder of its own with its own settings and
    cache, beside copies of the run templates `inputs` it is made from."""
    from galaxy_core.training import RunStore
    from galaxy_core.training.client import new_run, train_in_this_process

    base = tmp_path_factory.mktemp(name)
    (base / "galaxy-lab.toml").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GALAXY_LAB_SETTINGS", str(base / "galaxy-lab.toml"))
        patch.setenv("GALAXY_LAB_CACHE_DIR", str(base / "cache"))
        store = RunStore(base / "runs")
        copies = [_copy_into_runs(template, store.root) for template in inputs]
        run = new_run(store, make_config([copy.summary() for copy in copies]), MACHINE_TEACHER)
        assert train_in_this_process(run) == "finished", run.status().get("traceback")
    return run.path


def _train_template(tmp_path_factory, name: str, config: dict) -> Path:
    """A run of `config` trained once, in a folder of its own, with its own settings and cache."""
    from galaxy_core.training import TrainConfig

    return _run_template(tmp_path_factory, name, lambda _: TrainConfig.from_dict(config))


def _copy_into_runs(template: Path, runs: Path):
    from galaxy_core.training import Run

    shutil.copytree(template, runs / template.name)
    return Run(runs / template.name)


@pytest.fixture(scope="session")
def _trained_run_template(tmp_path_factory) -> Path:
    return _train_template(tmp_path_factory, "trained", TRAINED_RUN_CONFIG)


@pytest.fixture
def finished_run(_trained_run_template, isolated_settings):
    """A finished run (tiny custom_cnn on 90 synthetic galaxies at 32 px) in this test's runs folder."""
    return _copy_into_runs(_trained_run_template, isolated_settings["runs"])


# A label review of the same galaxies by 2 folds of the tiny model, made once per test session.
REVIEW_RUN_CONFIG = {**TRAINED_RUN_CONFIG, "epochs": 1, "kind": "label_review", "folds": 2}


@pytest.fixture(scope="session")
def _review_run_template(tmp_path_factory) -> Path:
    return _train_template(tmp_path_factory, "review", REVIEW_RUN_CONFIG)


@pytest.fixture
def finished_review(_review_run_template, isolated_settings):
    """A finished label review (2 folds of a tiny custom_cnn on 90 synthetic galaxies) in this test's runs
    folder."""
    return _copy_into_runs(_review_run_template, isolated_settings["runs"])


@pytest.fixture(scope="session")
def _transfer_run_template(tmp_path_factory, _trained_run_template) -> Path:
    """A transfer run (a new head for 2 epochs on the trained run's frozen network), in a runs folder beside a copy
    of its base."""
    from galaxy_core.training.kinds.transfer import transfer_config

    return _run_template(
        tmp_path_factory,
        "transfer",
        lambda bases: transfer_config(bases[0], epochs=2),
        (_trained_run_template,),
    )


@pytest.fixture
def finished_transfer(_transfer_run_template, finished_run, isolated_settings):
    """A finished transfer run started from `finished_run`, both in this test's runs folder."""
    return _copy_into_runs(_transfer_run_template, isolated_settings["runs"])


@pytest.fixture(scope="session")
def _ensemble_run_template(tmp_path_factory, _trained_run_template, _transfer_run_template) -> Path:
    """An ensemble of the trained run and the transfer run (equal weights), in a runs folder beside them."""
    from galaxy_core.training.kinds.ensemble import ensemble_config

    return _run_template(tmp_path_factory, "ensemble", ensemble_config, (_trained_run_template, _transfer_run_template))


@pytest.fixture
def finished_ensemble(_ensemble_run_template, finished_transfer, isolated_settings):
    """A finished ensemble of `finished_run` and `finished_transfer`, all three in this test's runs folder."""
    return _copy_into_runs(_ensemble_run_template, isolated_settings["runs"])


@pytest.fixture
def queue_that_never_starts(monkeypatch):
    """The service runs, and can start nothing (Ray is not reachable there): runs stay queued."""
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")


@pytest.fixture
def gz1_path() -> Path:
    if not GZ1_PATH.is_dir():
        pytest.skip(f"the real GZ1 data is not at {GZ1_PATH} (it is beside the repository in CI)")
    return GZ1_PATH


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a failed test so fixtures (the browser's screenshot) can react in their teardown."""
    outcome = yield
    if outcome.get_result().failed:
        item.stash["failed"] = True
