import argparse
import contextlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galaxy_core.answers.inference import balanced_accuracy_interval_of
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.cli import build_parser, main
from galaxy_core.evaluation import LABEL_NOISE_NOTE
from galaxy_core.training import RunState, RunStore
from galaxy_core.training.client import ServiceClient, new_run
from galaxy_core.training.config import PRESETS
from galaxy_core.training.service import ServiceFiles
from tests.helpers import saved_balanced_accuracy, stop_training_service, tiny_config, wait_for, write_image_folder


def test_data_info_prints_counts_as_json(capsys):
    assert main(["data-info", "synthetic", "--num-images", "30", "--image-size", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["class_names"] == ["edge", "smooth", "spiral"]
    assert summary["image_shape"] == [16, 16, 3]
    assert sum(split["total"] for split in summary["splits"].values()) == 30


def test_data_info_names_skipped_files(isolated_settings, capsys):
    root = write_image_folder(isolated_settings["data"] / "mine", {"a": 4, "b": 4})
    (root / "a" / "broken.jpg").write_bytes(b"")
    assert main(["data-info", "mine", "--image-size", "16", "--grayscale"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 file(s):" in out and "a/broken.jpg: the file is empty" in out
    assert "[16, 16, 1]" in out


def test_datasets_lists_what_is_found(isolated_settings, capsys):
    write_image_folder(isolated_settings["data"] / "mine", {"a": 2, "b": 2})
    assert main(["datasets", "--json"]) == 0
    labels = [c["label"] for c in json.loads(capsys.readouterr().out)]
    assert labels == ["synthetic (built in, offline)", "mine (folder)"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data-info", "no-such-dataset"], "'no-such-dataset' is none of: 'synthetic'"),
        (["data-info", "synthetic", "--image-size", "3"], "image_size must be"),
        (["download", "sdss", "--url", "http://127.0.0.1:9/x.h5"], "seems to be offline"),
    ],
)
def test_errors_are_one_clear_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


COMMANDS = (
    "serve",
    "datasets",
    "data-info",
    "download",
    "train",
    "runs",
    "stop",
    "rename",
    "delete",
    "restore",
    "empty-trash",
    "tensorboard",
    "lesson",
    "roster",
    "challenge",
    "review-labels",
    "reviewed-labels",
    "ensemble",
    "evaluate",
    "predict",
    "export",
)


def test_help_documents_every_subcommand(capsys):
    import galaxy_core.cli

    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(subcommands.choices) == sorted(COMMANDS)  # none missing here, none undocumented there
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\w", out, re.MULTILINE), f"{command} has no help line"
        assert re.search(rf"^galaxy-lab {command}\b", galaxy_core.cli.__doc__, re.MULTILINE), command
        with pytest.raises(SystemExit) as exit_status:
            main([command, "--help"])
        assert exit_status.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: galaxy-lab {command} ")


@pytest.mark.parametrize("module", ["galaxy_core.training.supervisor", "galaxy_core.training.worker"])
def test_the_services_own_processes_answer_help_and_start_nothing(module, tmp_path, capsys, monkeypatch):
    """`--help` once became a runs folder of that name, with a service serving it."""
    from importlib import import_module

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_status:
        import_module(module).main(["--help"])
    assert exit_status.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {module}")
    assert list(tmp_path.iterdir()) == []


TINY_TRAIN = [
    "train",
    "--dataset",
    "synthetic",
    "--num-images",
    "60",
    "--image-size",
    "16",
    "--epochs",
    "2",
    "--model",
    "custom_cnn",
    "--model-options",
    '{"blocks": 1, "filters": 4}',
]


def test_train_prints_progress_and_the_run_id_last(tmp_path, capsys):
    assert main([*TINY_TRAIN, "--runs-dir", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    run_id = captured.out.strip().splitlines()[-1]
    assert (tmp_path / "runs" / run_id / "final.keras").is_file()
    assert "epoch 2:" in captured.err and "val_balanced_accuracy" in captured.err
    assert "test accuracy" in captured.err and LABEL_NOISE_NOTE in captured.err
    low, high = balanced_accuracy_interval_of(RunStore(tmp_path / "runs").get(run_id))
    assert f"(95% bootstrap interval {low:.4f} to {high:.4f})" in captured.err
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert run_id in table and table.rstrip().endswith(LABEL_NOISE_NOTE)
    assert main(["runs", "--json", "--runs-dir", str(tmp_path / "runs")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"], r["epochs_done"]) for r in rows] == [(run_id, "finished", 2)]
    assert main(["stop", run_id, "--runs-dir", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.strip() == f"{run_id}: finished: finished after 2 of 2 epochs, evaluated"
    stop_training_service(tmp_path / "runs")


def test_train_detach_queues_and_prints_the_id_at_once(isolated_settings, capsys, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # nothing can start: the run stays queued
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    assert main([*TINY_TRAIN, "--detach"]) == 0
    run_id = capsys.readouterr().out.strip()
    client = ServiceClient(isolated_settings["runs"])
    wait_for(lambda: client.service().problem, timeout=30)
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "training service: queued runs wait: cannot reach the Ray cluster at 127.0.0.1:9 " + (
        "([Errno 111] Connection refused): start it with `ray start --head`, or set ray_address"
    )
    assert lines[2].split()[:2] == [run_id, "queued"]


QUICK, RECOMMENDED = PRESETS["quick"], PRESETS["recommended"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--preset", "quick"], (QUICK.image_size, QUICK.settings["epochs"], QUICK.model, 0.0)),
        (["--preset", "quick", "--image-size", "32", "--epochs", "3"], (32, 3, QUICK.model, 0.0)),
        (
            ["--preset", "recommended", "--weight-averaging", "0"],
            (RECOMMENDED.image_size, RECOMMENDED.settings["epochs"], RECOMMENDED.model, 0.0),
        ),
        # Another model: its own recipe at the dataset's size, the recommended number of epochs and averaging.
        (
            ["--model", "custom_cnn"],
            (64, RECOMMENDED.settings["epochs"], "custom_cnn", RECOMMENDED.settings["weight_averaging"]),
        ),
    ],
)
def test_train_takes_a_preset_and_single_changes_to_it(isolated_settings, capsys, monkeypatch, flags, expected):
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # nothing can start: the run stays queued
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    assert main(["train", "--dataset", "synthetic", "--num-images", "60", *flags, "--detach"]) == 0
    config = json.loads((isolated_settings["runs"] / capsys.readouterr().out.strip() / "config.json").read_text())
    got = (config["dataset"]["image_size"], config["epochs"], config["model"], config["weight_averaging"])
    assert got == expected


def test_a_label_review_from_the_terminal_exports_its_csv_and_a_run_trains_on_it(
    finished_review, isolated_settings, capsys, monkeypatch, tmp_path
):
    from galaxy_core.cli.training import _print_record

    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # nothing can start: queued runs stay queued
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    tiny = ["--dataset", "synthetic", "--num-images", "90", "--image-size", "32"]
    assert main(["review-labels", *tiny, "--folds", "3", "--epochs", "2", "--detach"]) == 0
    queued_id = capsys.readouterr().out.strip()
    queued = json.loads((isolated_settings["runs"] / queued_id / "config.json").read_text())
    assert (queued["kind"], queued["options"]["folds"], queued["epochs"]) == ("label_review", 3, 2)
    _print_record({"kind": "review_epoch", "epoch": 2, "loss": 0.5}, live=False)
    assert capsys.readouterr().err == "epoch 2: loss 0.5000\n"
    assert main(["reviewed-labels", finished_review.id, "--accept-above", "0.01"]) == 0  # every suggestion accepted
    captured = capsys.readouterr()
    rows = captured.out.splitlines()
    assert rows[0].startswith("rank,image,given_label,suggested_label") and len(rows) > 1
    assert all(row.endswith(",accepted") for row in rows[1:])
    assert f"{len(rows) - 1} doubted, {len(rows) - 1} accepted" in captured.err
    (tmp_path / "reviewed.csv").write_text(captured.out)
    argv = ["train", *tiny, "--reviewed-labels", str(tmp_path / "reviewed.csv"), "--accepted", "leave_out"]
    assert main([*argv, "--detach"]) == 0
    config = json.loads((isolated_settings["runs"] / capsys.readouterr().out.strip() / "config.json").read_text())
    assert config["label_changes"] == {row.split(",")[1]: None for row in rows[1:]}
    assert config["label_changes_from"] == "reviewed.csv, accepted suggestions left out"
    assert main([*argv[:-3], str(tmp_path / "missing.csv"), "--detach"]) == 2
    assert "missing.csv cannot be read: No such file or directory" in capsys.readouterr().err
    assert main(["reviewed-labels", queued_id]) == 2
    assert f"error: label review {queued_id} has no results: it is queued" in capsys.readouterr().err


def test_train_from_a_run_starts_from_its_network(finished_run, isolated_settings, capsys):
    argv = ["train", "--from", finished_run.id, "--epochs", "2", "--train-per-class", "5"]
    assert main(argv) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    summary = RunStore(isolated_settings["runs"]).get(run_id).summary()
    assert (summary.state.value, summary.kind, summary.base_run) == ("finished", "transfer", finished_run.id)
    assert summary.dataset == finished_run.summary().dataset  # the base's dataset, at its size
    assert summary.config["train_per_class"] == 5 and "few labels: 15 of" in summary.run.log_tail(40)
    assert main(["runs", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[run_id]["base_run"] == finished_run.id and rows[finished_run.id]["base_run"] is None
    stop_training_service(isolated_settings["runs"])


def test_an_ensemble_of_two_runs_is_queued_evaluated_and_answers_like_a_run(
    finished_run, finished_transfer, isolated_settings, capsys, tmp_path
):
    argv = ["ensemble", finished_run.id, finished_transfer.id, "--title", "the two of us"]
    assert main(argv) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    summary = RunStore(isolated_settings["runs"]).get(run_id).summary()
    assert (summary.state.value, summary.kind, summary.title) == ("finished", "ensemble", "the two of us")
    assert summary.options["members"] == [finished_run.id, finished_transfer.id]
    assert main(["evaluate", run_id]) == 0
    assert f"balanced accuracy  {saved_balanced_accuracy(summary.run):.4f}" in capsys.readouterr().out
    image = tmp_path / "galaxy.png"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(image)
    assert main(["predict", run_id, str(image)]) == 0 and "galaxy.png" in capsys.readouterr().out
    assert main(["ensemble", finished_run.id, run_id]) == 2
    assert "is an ensemble already: choose single networks' runs" in capsys.readouterr().err
    stop_training_service(isolated_settings["runs"])


def test_train_networks_queues_one_run_of_several_seeds_and_refuses_what_cannot_be(
    finished_run, isolated_settings, capsys, monkeypatch
):
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # nothing can start: queued runs stay queued
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    assert main([*TINY_TRAIN, "--networks", "3", "--seed", "4", "--detach"]) == 0
    run_id = capsys.readouterr().out.strip()
    summary = RunStore(isolated_settings["runs"]).get(run_id).summary()
    assert (summary.kind, summary.options["ensemble_size"], summary.config["seed"]) == ("seed_ensemble", 3, 4)
    assert summary.epochs_planned == 3 * 2
    for flags, message in [
        (["--networks", "11"], "ensemble_size must be a whole number from 2 to 10, got 11"),
        (["--networks", "2", "--from", finished_run.id], "--networks K and --from RUN ask for different runs"),
        (["--networks", "2", "--epochs", "150"], "at most 200 epochs per run, not 300 (150 asked for, over all its"),
    ]:
        assert main([*TINY_TRAIN, *flags, "--detach"]) == 2
        assert message in capsys.readouterr().err
    assert sorted(RunStore(isolated_settings["runs"]).run_ids()) == sorted([finished_run.id, run_id])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--image-size", "48"], "takes 32 px images with 3 channel"),
        (["--model", "custom_cnn"], "has the base's model"),
        (["--cut", "nowhere"], "the base has no layer 'nowhere' before its own classifier"),
        (["--unfreeze-from", "block1_conv1", "--cut", "image"], "keeps no layer 'block1_conv1' to unfreeze from"),
        (["--from", "20261204-000000-gone-0000"], "no run '20261204-000000-gone-0000' to start from"),
    ],
)
def test_train_from_a_run_refuses_what_cannot_go_with_it(finished_run, isolated_settings, capsys, flags, message):
    assert main(["train", "--from", finished_run.id, *flags]) == 2
    assert message in capsys.readouterr().err
    assert RunStore(isolated_settings["runs"]).run_ids() == [finished_run.id]  # nothing queued


def test_runs_dir_comes_from_the_environment_too(isolated_settings, capsys):
    assert main([*TINY_TRAIN, "--epochs", "1"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert (isolated_settings["runs"] / run_id).is_dir()
    assert main(["runs"]) == 0 and run_id in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stop", "no-such-run"], "no run 'no-such-run'"),
        (["stop", "../etc"], "is not a run id"),
        (["train", "--model", "lenet"], "unknown model 'lenet'"),
        (["train", "--epochs", "0"], "epochs must be 1-500"),
    ],
)
def test_run_errors_are_clear(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_command_line_and_the_app_start_without_tensorflow():
    # TensorFlow costs seconds to import: the CLI's parser and the pages' shared code must not pull it in.
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT

    code = (
        "import sys; import galaxy_core.cli as cli; cli.build_parser(); "
        "import pages.ui.state, pages.ui.runs, pages.home; "
        "import galaxy_core.answers.inference, galaxy_core.answers.uploads, galaxy_core.answers.export; "
        "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False).returncode == 0


def test_a_flag_the_datasets_source_does_not_take_is_refused(isolated_settings, capsys):
    write_image_folder(isolated_settings["data"] / "mine", {"a": 3, "b": 3})
    assert main(["data-info", "mine", "--num-images", "300"]) == 2
    assert "dataset source 'folder' does not take 'num_images'" in capsys.readouterr().err


def test_a_programming_error_keeps_its_traceback(monkeypatch):
    import galaxy_core.cli.data as data_commands

    def broken(settings):
        return {}["model"]

    monkeypatch.setattr(data_commands, "discover_datasets", broken)
    with pytest.raises(KeyError, match="model"):  # not turned into "error: 'model'"
        main(["datasets"])


def _processes() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, state letter)} of every process, read from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            found[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return found


def _descendants(pid: int) -> dict[int, str]:
    """{pid: state} of the processes under `pid` (children, their children, ...)."""
    processes, found, parents = _processes(), {}, [pid]
    while parents:
        parent = parents.pop()
        for child, (its_parent, state) in processes.items():
            if its_parent == parent and child not in found:
                found[child] = state
                parents.append(child)
    return found


def _lab_processes(runs: Path) -> set[int]:
    """The processes whose environment names this runs folder: serve and all it started, however far down."""
    mark = f"GALAXY_LAB_RUNS_DIR={runs}\0".encode()
    found = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if mark in environ.read_bytes():
                found.add(int(environ.parent.name))
    return found


def _warm_up_gone(pid: int) -> bool:
    """No warm-up process under `pid`, running or a zombie (whose command line reads empty)."""
    under = _descendants(pid)
    running = [child for child in under if b"galaxy_core.warm_up" in _command_line(child)]
    return not running and "Z" not in under.values()


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_serve_runs_from_an_installed_copy_and_a_sigterm_leaves_nothing_behind(tmp_path, isolated_settings):
    """Installed with pip (no checkout on the path), `galaxy-lab serve` finds its app, resumes the queue, and reaps
    its warm-up; SIGTERM ends Streamlit, stops the run that trains and ends the training service and its standby
    worker: no process it started is left."""
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    from tests.helpers import REPO_ROOT

    source = tmp_path / "source"
    for name in ("galaxy_core", "pages"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "app.py", "serve.py"):
        shutil.copy(REPO_ROOT / name, source / name)
    installed = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-t", installed, source],
        check=True,
        capture_output=True,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    work = tmp_path / "elsewhere"
    work.mkdir()
    store = RunStore(isolated_settings["runs"])
    run = new_run(store, tiny_config(epochs=100), MACHINE_TEACHER)  # queued before serve: serve resumes the queue
    server = subprocess.Popen(
        [sys.executable, "-m", "galaxy_core.cli", "serve", "--headless", "--port", str(port)],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(installed)},
        start_new_session=True,
        stdout=(tmp_path / "serve.out").open("w"),
    )

    def healthy() -> bool:
        assert server.poll() is None, "serve ended early"
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok"
        except OSError:
            return False

    try:
        wait_for(healthy, timeout=60, interval=0.5)
        # The app runs in a session of its own (what serve asks for at once, to start the server's warm-up).
        check = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/script-health-check", timeout=60)
        assert check.read() == b"ok"
        children = subprocess.run(["pgrep", "-g", str(server.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) >= 2  # serve and its Streamlit child
        streamlit_cmdline = " ".join(
            Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid in children if int(pid) != server.pid
        )
        assert str(installed / "serve.py") in streamlit_cmdline  # the router with the sign-in routes
        # Without sign-in, whoever opens the lab is the teacher: it is served on this machine only, and says so.
        assert "--server.address=127.0.0.1" in streamlit_cmdline
        said = (tmp_path / "serve.out").read_text()
        assert f"galaxy-lab: serving on 127.0.0.1:{port}" in said and "whoever opens the lab is the teacher" in said
        assert "WARNING" not in said
        # The warm-up ends and is reaped: no zombie is left under serve (it was one for the server's whole life).
        wait_for(lambda: _warm_up_gone(server.pid), timeout=120, interval=0.5)
        wait_for(lambda: run.summary().state is RunState.RUNNING and run.summary().epochs_done >= 1, timeout=90)
        started = _lab_processes(store.root)
        assert len(started) >= 4  # serve, Streamlit, the service, the run's worker (and the warm-up of its dataset)
        server.send_signal(signal.SIGTERM)
        # 241: uvicorn (under an st.App) exits with -SIGTERM as a byte
        assert server.wait(timeout=90) in (0, -signal.SIGTERM, 143, 256 - signal.SIGTERM)
        assert subprocess.run(["pgrep", "-g", str(server.pid)], capture_output=True).stdout == b""
        wait_for(lambda: not _lab_processes(store.root), timeout=10)  # the service and any standby worker too
        assert "stopping 1 queued or training run(s)" in (tmp_path / "serve.out").read_text()
        assert run.summary().state is RunState.STOPPED and not ServiceFiles(store.root).running()
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not past a listener
            probe.bind(("127.0.0.1", port))  # nothing listens on the port any more
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group, leader gone or not
            os.killpg(server.pid, signal.SIGKILL)


def test_tensorflows_start_up_lines_appear_only_when_asked_for():
    """`evaluate` imports TensorFlow before it looks for the run: a missing run is enough to see what it prints."""
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}

    def evaluate(*flags: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "galaxy_core.cli", *flags, "evaluate", "no-such-run"]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    quiet, verbose = evaluate(), evaluate("--verbose")
    assert quiet.returncode == verbose.returncode == 2
    # What TensorFlow prints when left alone: which lines depends on the machine's CPU
    startup = [line for line in verbose.stderr.splitlines() if "oneDNN" in line or "absl::InitializeLog" in line]
    assert startup and verbose.stderr.splitlines()[-1].startswith("error: no run 'no-such-run' in ")
    assert len(quiet.stderr.splitlines()) == 1 and quiet.stderr.startswith("error: no run 'no-such-run' in ")


def test_train_and_data_info_are_quiet_in_a_fresh_process(isolated_settings):
    """`train` checks its model with Keras, and `data-info` decodes JPEG files with TensorFlow: neither lets
    TensorFlow's start-up lines through (they came back once, from the model registry's import of Keras)."""
    import subprocess
    import sys

    write_image_folder(isolated_settings["data"] / "photos", {"a": 3, "b": 3}, extension=".jpg")
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    commands = [
        ["train", "--detach", "--num-images", "60", "--image-size", "16", "--model", "custom_cnn"],
        ["data-info", "photos", "--image-size", "16"],
    ]
    for flags in commands:
        done = subprocess.run(
            [sys.executable, "-m", "galaxy_core.cli", *flags], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "oneDNN" not in done.stderr and "absl" not in done.stderr and "cpu_feature" not in done.stderr, (
            flags,
            done.stderr,
        )


def test_tensorboard_shows_a_runs_event_files(finished_run, isolated_settings):
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "galaxy_core.cli", "tensorboard", finished_run.id, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:

        def runs_shown():
            try:
                return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2).read())
            except OSError:
                return None

        shown = wait_for(runs_shown, timeout=90, interval=0.5)
        assert f"{finished_run.id}/train" in shown and f"{finished_run.id}/validation" in shown
    finally:
        server.terminate()
        server.wait(30)


def test_tensorboard_without_event_files_says_so(isolated_settings, capsys):
    assert main(["tensorboard"]) == 2
    assert "no run has TensorBoard event files yet" in capsys.readouterr().err


def test_the_lesson_from_the_terminal(finished_run, finished_review, isolated_settings, capsys):
    from galaxy_core.classroom.lesson import lesson_base_id

    assert main(["lesson"]) == 0 and capsys.readouterr().out == "the class starts from no run\n"
    assert main(["lesson", finished_run.id]) == 0
    assert capsys.readouterr().out == f"the class starts from run {finished_run.summary().name} ({finished_run.id})\n"
    assert lesson_base_id(isolated_settings["runs"]) == finished_run.id  # what the Train page opens on
    assert main(["lesson", finished_review.id]) == 2
    assert "is a label review" in capsys.readouterr().err
    assert lesson_base_id(isolated_settings["runs"]) == finished_run.id  # a refusal changes nothing
    assert main(["lesson", "--clear"]) == 0 and lesson_base_id(isolated_settings["runs"]) is None


def test_the_roster_from_the_terminal(isolated_settings, capsys):
    from galaxy_core.classroom.roster import Roster

    assert main(["roster", "add", "Ada", "Bob Smith"]) == 0
    codes = dict(line.split("\t") for line in capsys.readouterr().out.strip().splitlines())
    assert set(codes) == {"Ada", "Bob Smith"}
    roster = Roster(isolated_settings["runs"])
    assert roster.sign_in("bob smith", codes["Bob Smith"]).name == "Bob Smith"
    assert main(["roster", "teacher"]) == 0
    name, secret = capsys.readouterr().out.strip().split("\t")
    assert name == "teacher" and roster.sign_in("teacher", secret).is_teacher
    assert main(["roster", "remove", "Ada"]) == 0
    assert main(["roster", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["Bob Smith", "teacher secret: set"]
    assert main(["roster", "add", "bob smith"]) == 2
    assert "already on the roster" in capsys.readouterr().err


def test_delete_restore_and_empty_the_trash_from_the_terminal(finished_run, capsys):
    assert main(["rename", finished_run.id, "my <first> run"]) == 0
    assert main(["delete", finished_run.id]) == 0
    assert f"galaxy-lab restore {finished_run.id}" in capsys.readouterr().out
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["restore", finished_run.id]) == 0
    assert "restored (finished: finished after 2 of 2 epochs" in capsys.readouterr().out
    assert main(["runs", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["title"], row["owner"]) == (finished_run.id, "my <first> run", "the teacher")
    assert main(["delete", finished_run.id]) == 0 and main(["empty-trash"]) == 0
    assert "1 run(s) deleted for good" in capsys.readouterr().out
    assert not finished_run.path.exists() and main(["restore", finished_run.id]) == 2
