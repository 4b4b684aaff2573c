"""Helpers the tests share: paths, polling, small datasets written on the fly, pages under AppTest, tiny runs.

Fixtures live in conftest.py; test modules import these helpers from here, never from each other."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from galaxy_core.classroom.challenge import scoring_root
from galaxy_core.classroom.people import MACHINE_TEACHER, User
from galaxy_core.training import Run, RunStore, TrainConfig
from galaxy_core.training.client import new_run, train_in_this_process

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE_TIMEOUT = 120  # seconds: a first page run may import TensorFlow and decode a dataset
GZ1_PATH = REPO_ROOT.parent / "shared" / "data" / "gz1-3class"


def stop_training_service(runs: Path) -> None:
    """End what a test started in `runs`: its training service and any worker still training."""
    from galaxy_core.training import RunState, RunStore
    from galaxy_core.training.executors import kill_process
    from galaxy_core.training.records import valid_pid
    from galaxy_core.training.service import ServiceFiles, spawned_services

    for process in spawned_services():  # services this test process started, even one without its lock yet
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    files = ServiceFiles(runs)
    pid = valid_pid((files.status() or {}).get("pid"))
    if pid and files.running():  # one a command started
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while files.running() and time.monotonic() < deadline:
            time.sleep(0.1)
    for summary in RunStore(runs).runs():
        if summary.state is RunState.RUNNING:
            kill_process(summary.pid, summary.pid_start)


def saved_balanced_accuracy(run, which: str = "probabilities") -> float:
    """The test balanced accuracy of a run's saved predictions (`which`: "probabilities", or "tta_probabilities"),
    worked out here, apart from the lab's code: the mean over classes of the share of each class's images predicted
    as that class."""
    with np.load(run.predictions_path) as saved:
        labels, predicted = saved["labels"], saved[which].argmax(axis=1)
    return float(np.mean([np.mean(predicted[labels == label] == label) for label in np.unique(labels)]))


def rewrite_status(run, state: str, **fields) -> None:
    """Stage a run in a state as the training service would have recorded it, however it got there (a test's
    fixture; the lab itself moves runs only along their life's transitions)."""
    status = {**run.status(), **fields, "state": state}
    (run.path / "status.json").write_text(json.dumps(status))


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
    """A script that draws one page for the signed-in user, as the router does (without its sidebar)."""
    return (
        f"from pages.{name} import render\nfrom pages.ui.identity import signed_in_user, viewer_of\n\n"
        "render(viewer_of(signed_in_user()))\n"
    )


def open_page(name: str, *, signed_in_as: dict | None = None, link: dict | None = None, **state):
    """The page pages/<name>.py drawn once under Streamlit's AppTest (without the router's sidebar), with these
    session-state values (None: unset); `signed_in_as`: who st.user says is signed in (auth = "oidc"); `link`: the
    URL's query parameters."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(page_script(name), default_timeout=PAGE_TIMEOUT)
    if signed_in_as is not None:
        at.user = {"is_logged_in": True, **signed_in_as}
    for key, value in (link or {}).items():
        at.query_params[key] = value
    for key, value in state.items():
        if value is not None:
            at.session_state[key] = value
    return at.run()


def lab_viewer():
    """The viewer of a lab without sign-in: the machine's teacher, every run listed (pages.ui.identity.Viewer)."""
    from pages.ui.identity import Viewer

    return Viewer(MACHINE_TEACHER, sign_in=False, only_mine=False, names_shown=False)


def unescaped(markdown: str) -> str:
    """Markdown as a person reads it: backslash escapes taken off (pages escape what people and the library bring)."""
    return re.sub(r"\\(.)", r"\1", markdown)


# Fields of an element's message that Streamlit renders as Markdown (bodies of markdown, captions and alerts,
# labels and help of widgets, metrics, expanders and tabs, image captions, the options of a radio).
MARKDOWN_FIELDS = {"body", "label", "help", "caption", "placeholder", "text", "content"}
PLAIN_TEXT_ELEMENTS = {"text", "code", "json", "arrow_data_frame", "html"}


def _markdown_fields(message, options: bool) -> list[str]:
    found = []
    for field, value in message.ListFields():
        repeated = not isinstance(value, str | bytes) and hasattr(value, "__len__") and not hasattr(value, "ListFields")
        for item in list(value) if repeated else [value]:
            if isinstance(item, str) and (field.name in MARKDOWN_FIELDS or (options and field.name == "options")):
                found.append(item)
            elif hasattr(item, "ListFields"):
                found.extend(_markdown_fields(item, options))
    return found


def markdown_texts(at) -> list[str]:
    """Every text of an AppTest page that Streamlit renders as Markdown (what must show what people bring as
    typed); plain-text elements (st.text, code, tables, menus' options) are left out."""
    texts = []
    for node in at._tree:
        proto = getattr(node, "proto", None)
        if proto is None or getattr(node, "type", "") in PLAIN_TEXT_ELEMENTS or not hasattr(proto, "ListFields"):
            continue
        texts.extend(_markdown_fields(proto, options=getattr(node, "type", "") == "radio"))
    return texts


ISSUER = "https://idp.school.org/realms/class"


def school_account(email: str, name: str, *, verified: bool = True, subject: str | None = None) -> dict:
    """The claims st.user holds for an account of the school's OpenID Connect provider (auth = "oidc")."""
    return {"iss": ISSUER, "sub": subject or f"id-{email}", "email": email, "email_verified": verified, "name": name}


def account_user(claims: dict, role: str) -> User:
    """The lab's user for a school account's claims (galaxy_core.classroom.identity: known by issuer and subject)."""
    return User(f"{claims['iss']}#{claims['sub']}", claims["name"], role)


def give_run(run, owner) -> None:
    """Make a run `owner`'s (a galaxy_core.classroom.people.User), as if they had queued it."""
    config = json.loads((run.path / "config.json").read_text())
    owned = {"owner": owner.id, "owner_name": owner.name, "owner_role": owner.role}
    (run.path / "config.json").write_text(json.dumps({**config, **owned}))


TINY_DATA = {"name": "synthetic", "num_images": 60, "image_size": 16}
TINY_MODEL = {"blocks": 1, "filters": 4, "convs_per_block": 1}


def tiny_config(**overrides) -> TrainConfig:
    values = {
        "dataset": TINY_DATA,
        "model": "custom_cnn",
        "model_options": TINY_MODEL,
        "epochs": 2,
        "batch_size": 16,
        "early_stopping": False,
    }
    return TrainConfig.from_dict({**values, **overrides})  # a kind's options may be given beside the recipe


def write_galaxy10(path, count=40, size=69, labels=None, keys=("images", "ans")):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as file:
        if "images" in keys:
            file["images"] = rng.integers(0, 255, (count, size, size, 3), dtype=np.uint8)
        if "ans" in keys:
            file["ans"] = np.arange(count) % 10 if labels is None else labels
    return path


@functools.cache
def shared_model(name: str, input_shape: tuple[int, int, int], num_classes: int = 3):
    """A registered model built once per test session for this configuration, from seed 0, for tests that only
    read it (predict, Grad-CAM, save): the keras.applications bases are the slowest part of the suite to build."""
    import keras

    from galaxy_core.models import create_model

    keras.utils.set_random_seed(0)
    return create_model(name, input_shape, num_classes)


def run_in_its_first_epoch(runs: Path, worker_pid: int, steps=(1, 6, 12)):
    """A run 12 batches into the first of its 3 epochs, as a worker with pid `worker_pid` (a live stand-in
    process, so that the training service counts it as running) would have written it; `record_batches(run,
    steps)` adds batches."""
    from galaxy_core.training import RunStore
    from galaxy_core.training.executors import process_start_time

    run = new_run(RunStore(runs), tiny_config(epochs=3), MACHINE_TEACHER)
    run.move_to("running", executor="local", pid=worker_pid, pid_start=process_start_time(worker_pid))
    run.report_progress(message="training", epochs_done=0, batches_done=steps[-1], steps_per_epoch=40, eta_seconds=300)
    record_batches(run, steps)
    return run


def record_batches(run, steps) -> None:
    """Batch records of the first epoch at these steps, on a curve that bends at every batch (plotly draws
    collinear points as one segment), and a heartbeat."""
    run.beat()
    for step in steps:
        loss = step**-0.5
        record = {"kind": "batch", "epoch": 0, "step": step, "steps_per_epoch": 40}
        run.append_metrics({**record, "loss": loss, "accuracy": 1 - loss, "time": time.time()})


CHROMIUM = os.environ.get("GALAXY_LAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
# The flags a sandboxed, offline machine needs (no background calls to Google's services).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str], *, port: int, cwd, env: dict, log: Path):
    """(the process, its URL): a Streamlit server started with `command` (which serves on `port`), once it answers
    its health check; the test fails with the end of its log if it does not within a minute."""
    server = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return server, url
        except OSError:
            time.sleep(0.3)
    os.killpg(server.pid, signal.SIGKILL)
    raise AssertionError(f"the server did not start: {log.read_text(errors='replace')[-2000:]}")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (a `galaxy-lab serve` passes it on), then SIGKILL if it lingers."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def browser_tabs(request, count: int = 1, viewport=(1400, 1000)):
    """`count` Chromium tabs for a browser test, each in a browser context of its own (its own cookies: a person of
    their own); a screenshot of each lands in test-artifacts/ when the test fails."""
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        raise AssertionError(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tabs = [browser.new_context().new_page() for _ in range(count)]
        for tab in tabs:
            tab.set_viewport_size({"width": viewport[0], "height": viewport[1]})
            # First loads render or decode a dataset and import TensorFlow: be patient, not flaky.
            tab.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)

        def screenshots() -> None:
            ARTIFACTS.mkdir(exist_ok=True)
            for number, tab in enumerate(tabs):
                tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{number}.png"), full_page=True)

        try:
            yield tabs
        except BaseException:  # the test failed inside the `with` block
            screenshots()
            raise
        else:
            if request.node.stash.get("failed", False):  # the test failed after a fixture handed the tabs over
                screenshots()
        finally:
            browser.close()


CLASSES = ("edge", "smooth", "spiral")  # the synthetic galaxies' and gz1-3class's
PRIVATE_COUNTS = (5, 7, 6)


def write_private_folder(root: Path) -> Path:
    """A challenge's private images at the runs' own size (32 px), so that reading them changes no pixel."""
    rng = np.random.default_rng(7)
    for label, (name, count) in enumerate(zip(CLASSES, PRIVATE_COUNTS, strict=True)):
        (root / name).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(galaxy_like_image(rng, label, size=32)).save(root / name / f"{index}.png")
    return root


def score_queued(settings) -> None:
    """Score every queued challenge scoring run here, as the scoring store's service would."""
    for summary in RunStore(scoring_root(settings.runs_dir)).runs():
        if summary.state.active:
            assert train_in_this_process(summary.run) == "finished", summary.run.status().get("traceback")


def copy_of_run(run, owner: User, suffix: str, **status) -> Run:
    """A copy of `run` beside it, made `owner`'s, finished with these status fields (a test balanced accuracy)."""
    copy = Run(run.path.with_name(f"{run.id}-{suffix}"))
    shutil.copytree(run.path, copy.path)
    give_run(copy, owner)
    if status:
        rewrite_status(copy, "finished", **status)
    return copy


def challenge_on(run, private: Path, title: str = "Spring"):
    """A challenge the machine's teacher sets up on `run`'s dataset, with the private folder `private`."""
    from galaxy_core.classroom.challenge import ChallengeRules, set_up_challenge
    from galaxy_core.settings import load_settings

    settings = load_settings()
    dataset = run.summary().dataset
    return set_up_challenge(
        settings.runs_dir, title, dataset, str(private), ChallengeRules(), MACHINE_TEACHER, settings
    )
