"""Shared fixtures: isolated settings, small image folders written on the fly, the real GZ1 folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE_TIMEOUT = 120  # seconds: a first page run may import TensorFlow and decode a dataset
GZ1_PATH = REPO_ROOT.parent / "shared" / "data" / "gz1-3class"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory, monkeypatch) -> dict[str, Path]:
    """Every test gets its own cache, runs and data folders, and no settings file from the checkout."""
    base = tmp_path_factory.mktemp("lab")
    folders = {name: base / name for name in ("cache", "runs", "data")}
    for folder in folders.values():
        folder.mkdir()
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


def stop_training_service(runs: Path) -> None:
    """End what a test started in `runs`: its training service and any worker still training."""
    from galaxy_core.training import RunState, RunStore
    from galaxy_core.training.executors import kill_process
    from galaxy_core.training.store import valid_pid
    from galaxy_core.training.supervisor import _spawned

    for process in _spawned:  # services this test process started, even one that has not yet taken its lock
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    store = RunStore(runs)
    pid = valid_pid((store.service_status() or {}).get("pid"))
    if pid and store.service_running():  # one a worker or a command started
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while store.service_running() and time.monotonic() < deadline:
            time.sleep(0.1)
    for summary in store.runs():
        if summary.state is RunState.RUNNING:
            kill_process(summary.pid, summary.pid_start)


def wait_for(predicate, timeout=120.0, interval=0.2):
    """The first true value of `predicate()`, polled every `interval` seconds; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def galaxy_like_image(rng: np.random.Generator, label: int, size: int = 24) -> np.ndarray:
    """A small RGB image whose brightness pattern depends on the label, so splits can be told apart."""
    pixels = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += np.uint8(60 * (label + 1))
    return pixels


def write_image_folder(
    root: Path, classes: dict[str, int], *, splits: tuple[str, ...] = (), extension: str = ".png", seed: int = 0
) -> Path:
    """Write `count` images per class, under split folders when `splits` is given."""
    rng = np.random.default_rng(seed)
    for split in splits or ("",):
        for label, (name, count) in enumerate(classes.items()):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                Image.fromarray(galaxy_like_image(rng, label)).save(folder / f"{name}_{index:03d}{extension}")
    return root


def page_script(name: str) -> str:
    """A script that draws one page, as the router does."""
    return f"from pages.{name} import render\n\nrender()\n"


def open_page(name: str, **state):
    """The page pages/<name>.py drawn once under Streamlit's AppTest (without the router's sidebar), with these
    session-state values (None: unset)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(page_script(name), default_timeout=PAGE_TIMEOUT)
    for key, value in state.items():
        if value is not None:
            at.session_state[key] = value
    return at.run()


# A tiny model on a few synthetic galaxies: trained once per test session, copied into each test's runs folder.
TRAINED_RUN_CONFIG = {
    "dataset": {"name": "synthetic", "num_images": 90, "image_size": 32},
    "model": "custom_cnn",
    "model_options": {"blocks": 2, "filters": 8, "convs_per_block": 1},
    "epochs": 2,
    "batch_size": 16,
    "early_stopping": False,
}


@pytest.fixture(scope="session")
def _trained_run_template(tmp_path_factory) -> Path:
    from galaxy_core.training import RunStore
    from galaxy_core.training.procedure import train_run

    base = tmp_path_factory.mktemp("trained")
    (base / "galaxy-lab.toml").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GALAXY_LAB_SETTINGS", str(base / "galaxy-lab.toml"))
        patch.setenv("GALAXY_LAB_CACHE_DIR", str(base / "cache"))
        run = RunStore(base / "runs").create(TRAINED_RUN_CONFIG, "custom_cnn")
        assert train_run(run) == "finished", run.status().get("traceback")
    return run.path


@pytest.fixture
def finished_run(_trained_run_template, isolated_settings):
    """A finished run (tiny custom_cnn on 90 synthetic galaxies at 32 px) in this test's runs folder."""
    from galaxy_core.training import Run

    target = isolated_settings["runs"] / _trained_run_template.name
    shutil.copytree(_trained_run_template, target)
    return Run(target)


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
