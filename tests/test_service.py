"""The training service with real processes: the queue moves by itself, every way a worker ends is recorded with
its cause, stops are honoured, the service survives its own death, and a terminal run uses the same queue."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.settings import load_settings
from galaxy_core.training import RunState, RunStore
from galaxy_core.training.client import ServiceClient, new_run
from galaxy_core.training.executors import process_alive, process_start_time
from tests.helpers import REPO_ROOT, TINY_DATA, TINY_MODEL, tiny_config, wait_for

LONG = 400  # epochs: a run that trains until it is stopped or killed


def has_epoch(run) -> bool:
    return any(record["kind"] == "epoch" for record in run.metrics())


def state_of(run) -> RunState:
    return run.summary().state


def test_one_slot_trains_each_student_in_turn_on_workers_waiting_on_standby(isolated_settings, capsys):
    """Real workers, one slot: Ada queued two runs before Bob queued his, and still Bob's starts before Ada's
    second; each run starts after the one before it ended, the later ones in a worker that was already waiting
    with TensorFlow imported (its process older than the hand-over); `runs --json` says where and how each ended;
    a killed service's standby worker leaves."""
    from galaxy_core.classroom.people import STUDENT, User
    from galaxy_core.cli import main

    client = ServiceClient(isolated_settings["runs"])
    ada, bob = User("ada", "Ada", STUDENT), User("bob", "Bob", STUDENT)
    owners = [ada, ada, bob]
    runs = [new_run(client.store, tiny_config(epochs=1, seed=number), owner) for number, owner in enumerate(owners)]
    client.ensure_service(client.store.runs())  # the service finds all three waiting
    wait_for(lambda: all(state_of(run) is RunState.FINISHED for run in runs), timeout=240)
    started = sorted((run.summary() for run in runs), key=lambda summary: summary.dispatched)
    assert [summary.owner_name for summary in started] == ["Ada", "Bob", "Ada"]
    assert started[0].id == runs[0].id  # between equals, the oldest first
    for before, after in itertools.pairwise(started):
        assert after.started > before.finished  # one slot
        assert after.pid != before.pid and ticks_since_boot(after.pid_start) < after.dispatched  # on standby
        assert "model custom_cnn" in after.run.log_tail()
    log = client.files.log_path.read_text()
    assert all(f"{run.id}: started on the local executor" in log for run in runs)
    assert main(["runs", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    for run in runs:
        row = rows[run.id]
        assert {key: row[key] for key in ("state", "executor", "epochs_done", "epochs_planned")} == {
            "state": "finished",
            "executor": "local",
            "epochs_done": 1,
            "epochs_planned": 1,
        }
        assert row["node"] and row["message"] == "finished after 1 of 1 epochs, evaluated"
        assert (row["model"], row["dataset"]) == ("custom_cnn", TINY_DATA["name"])
        assert run.evaluation() is not None
    service = client.files.status()["pid"]
    (waiting,) = wait_for(lambda: standby_workers(service), timeout=30)
    start = process_start_time(waiting)
    os.kill(service, signal.SIGKILL)
    wait_for(lambda: not process_alive(waiting, start), timeout=30)  # its standard input closed: it left


def ticks_since_boot(ticks: int) -> float:
    """A process start time (clock ticks since boot, /proc) as seconds since the epoch, read independently of the
    lab's code from /proc/stat's boot time."""
    lines = Path("/proc/stat").read_text().splitlines()
    boot = next(int(line.split()[1]) for line in lines if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def test_stop_and_kill_9_are_recorded_and_the_queue_goes_on(isolated_settings, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_MAX_CONCURRENT_RUNS", "2")
    client = ServiceClient(isolated_settings["runs"])
    stopped, killed = (
        client.submit(tiny_config(epochs=LONG), MACHINE_TEACHER),
        client.submit(tiny_config(epochs=LONG, seed=2), MACHINE_TEACHER),
    )
    queued = client.submit(tiny_config(seed=3), MACHINE_TEACHER)
    wait_for(lambda: has_epoch(stopped) and has_epoch(killed))
    assert state_of(queued) is RunState.QUEUED
    client.stop(stopped.id, MACHINE_TEACHER)
    os.kill(killed.summary().pid, signal.SIGKILL)
    seen = len(killed.metrics())
    wait_for(lambda: state_of(killed) is RunState.INTERRUPTED, timeout=10)
    assert killed.summary().message == (
        "interrupted: the worker was killed by signal 9 (SIGKILL; out of memory is a common cause)"
    )
    assert len(killed.metrics()) >= seen > 0  # nothing written before the kill is lost
    wait_for(lambda: state_of(stopped) is RunState.STOPPED)
    summary = stopped.summary()
    assert summary.message == f"stopped after {summary.epochs_done} of {LONG} epochs, evaluated"
    assert summary.has_test_results and stopped.best_model_path.is_file()
    wait_for(lambda: state_of(queued) is RunState.FINISHED)  # no page or command in between


def test_a_worker_that_does_not_answer_a_stop_is_killed_after_the_grace(isolated_settings, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_STOP_GRACE_SECONDS", "2")
    client = ServiceClient(isolated_settings["runs"])
    run = client.submit(tiny_config(epochs=LONG), MACHINE_TEACHER)
    wait_for(lambda: has_epoch(run))
    pid, start = run.summary().pid, run.summary().pid_start
    os.kill(pid, signal.SIGSTOP)  # frozen: no batch, no heartbeat
    client.stop(run.id, MACHINE_TEACHER)
    wait_for(lambda: state_of(run) is RunState.STOPPED, timeout=30)
    assert run.summary().message == "killed: no answer for 2 s after stop"
    wait_for(lambda: not process_alive(pid, start), timeout=10)


def test_a_deleted_run_folder_frees_its_slot(isolated_settings):
    client = ServiceClient(isolated_settings["runs"])
    deleted, queued = (
        client.submit(tiny_config(epochs=LONG), MACHINE_TEACHER),
        client.submit(tiny_config(seed=1), MACHINE_TEACHER),
    )
    wait_for(lambda: has_epoch(deleted))
    pid, start = deleted.summary().pid, deleted.summary().pid_start
    wait_for(lambda: shutil.rmtree(deleted.path, ignore_errors=True) or not deleted.path.exists(), timeout=10)
    wait_for(lambda: not process_alive(pid, start), timeout=15)
    wait_for(lambda: state_of(queued) is RunState.FINISHED)
    assert [summary.id for summary in client.store.runs()] == [queued.id]


def test_a_status_cannot_pass_another_process_or_a_bad_pid_off_as_its_worker(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    # This test's own process, with another start time (a reused pid); a pid of -1 (kill(-1) would signal every
    # process); a string.
    fakes = [{"pid": os.getpid(), "pid_start": 1}, {"pid": -1, "pid_start": 1}, {"pid": "1", "pid_start": 1}]
    runs = []
    for fields in fakes:
        run = new_run(store, tiny_config(), MACHINE_TEACHER)
        run.move_to("running", executor="local", **fields)
        runs.append(run)
    ServiceClient(store.root).ensure_service(store.runs())
    for run in runs:
        wait_for(lambda run=run: state_of(run) is RunState.INTERRUPTED, timeout=10)
        assert "its worker ended while the training service was not watching" in run.summary().message


def test_the_service_comes_back_after_kill_9_and_adopts_the_running_worker(isolated_settings):
    client = ServiceClient(isolated_settings["runs"])
    running, queued = (
        client.submit(tiny_config(epochs=LONG), MACHINE_TEACHER),
        client.submit(tiny_config(seed=1), MACHINE_TEACHER),
    )
    wait_for(lambda: has_epoch(running))
    old = client.files.status()["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not client.files.running(), timeout=10)
    time.sleep(1)
    assert not client.files.running()  # a worker never restarts its parent
    # The next look at the runs (a page, `galaxy-lab runs`) starts it again; the new one adopts the worker by its
    # pid and start time, so the queued run keeps waiting for the slot.
    client.ensure_service(client.store.runs())
    wait_for(lambda: client.files.running() and client.files.status()["pid"] != old, timeout=30)
    time.sleep(2)
    assert (state_of(running), state_of(queued)) == (RunState.RUNNING, RunState.QUEUED)
    client.stop(running.id, MACHINE_TEACHER)
    wait_for(lambda: state_of(running) is RunState.STOPPED)
    wait_for(lambda: state_of(queued) is RunState.FINISHED)


def test_a_run_that_ends_while_no_service_watches_keeps_its_outcome(isolated_settings):
    """The worker writes how its run ended; a service started after it has gone records that, not "interrupted"."""
    client = ServiceClient(isolated_settings["runs"])
    run = client.submit(tiny_config(epochs=3), MACHINE_TEACHER)
    wait_for(lambda: has_epoch(run))
    os.kill(client.files.status()["pid"], signal.SIGKILL)
    summary = run.summary()
    wait_for(lambda: not process_alive(summary.pid, summary.pid_start), timeout=120)  # it trained to its end alone
    assert state_of(run) is RunState.RUNNING and run.outcome().state is RunState.FINISHED
    client.ensure_service(client.store.runs())
    wait_for(lambda: not state_of(run).active, timeout=30)
    summary = run.summary()
    assert (summary.state, summary.message) == (RunState.FINISHED, "finished after 3 of 3 epochs, evaluated")
    assert summary.test_balanced_accuracy == run.evaluation()["balanced_accuracy"]


def test_a_queued_run_stops_at_once(isolated_settings, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # runs cannot start: Ray is not reachable there
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    client = ServiceClient(isolated_settings["runs"])
    run = client.submit(tiny_config(), MACHINE_TEACHER)
    assert client.stop(run.id, MACHINE_TEACHER).message == "stopped before it started"


def test_a_terminal_run_waits_in_the_same_queue_and_ctrl_c_stops_it(isolated_settings):
    client = ServiceClient(isolated_settings["runs"])
    app_run = client.submit(tiny_config(epochs=LONG), MACHINE_TEACHER)
    wait_for(lambda: has_epoch(app_run))
    command = [sys.executable, "-m", "galaxy_core.cli", "train", "--dataset", "synthetic", "--num-images", "60"]
    command += ["--image-size", "16", "--model", "custom_cnn", "--model-options", json.dumps(TINY_MODEL)]
    terminal = subprocess.Popen(
        [*command, "--epochs", "150", "--no-early-stopping"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # As in a terminal, Ctrl-C reaches it even when the tests were started in the background (`cmd &` in a
        # script), whose children inherit an ignored SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    terminal_run = wait_for(lambda: next((s.run for s in client.store.runs() if s.id != app_run.id), None))
    time.sleep(3)  # one slot: the terminal's run waits its turn, and is never reported dead
    assert (state_of(app_run), state_of(terminal_run)) == (RunState.RUNNING, RunState.QUEUED)
    client.stop(app_run.id, MACHINE_TEACHER)
    while state_of(app_run).active:
        assert state_of(terminal_run) is RunState.QUEUED
        time.sleep(0.1)
    wait_for(lambda: has_epoch(terminal_run))
    assert app_run.summary().finished <= terminal_run.summary().dispatched
    terminal.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = terminal.communicate(timeout=120)
    summary = terminal_run.summary()
    assert terminal.returncode == 0, err.decode()
    assert out.decode().strip().splitlines()[-1] == terminal_run.id
    assert summary.state is RunState.STOPPED and summary.message.endswith(", evaluated")
    assert "queued: waiting for a training slot" in err.decode() and "stop requested" in err.decode()


def in_a_mount_namespace(script: str, runs) -> object:
    """Run a Python script in a mount namespace of its own (where it may mount over `runs`, its only argument) and
    return the JSON it prints last."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], check=False).returncode:
        pytest.skip("needs `unshare -m` (root or CAP_SYS_ADMIN) to mount a filesystem of its own")
    result = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", script, str(runs)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys
    from galaxy_core.classroom.people import MACHINE_TEACHER
    from galaxy_core.training.client import ServiceClient
    from tests.helpers import stop_training_service, wait_for
    from tests.helpers import tiny_config
    runs = sys.argv[1]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", runs], check=True)
    client = ServiceClient(runs)
    first, second = client.submit(tiny_config(), MACHINE_TEACHER), client.submit(tiny_config(seed=1), MACHINE_TEACHER)
    wait_for(lambda: not second.summary().state.active, timeout=180)
    print(json.dumps([first.summary().message, second.summary().message]))
    stop_training_service(client.store.root)
    """
)


def test_a_full_disk_fails_runs_with_that_cause_and_the_queue_goes_on(isolated_settings):
    """On a real 160 kB filesystem (mounted in a mount namespace of its own): two runs' checkpoints do not fit;
    each run ends with a final state (written from the space the store keeps in reserve), none stays running."""
    messages = in_a_mount_namespace(FULL_DISK_SCRIPT, isolated_settings["runs"])
    full = "failed: no space left on device"
    assert full in messages and all(m == full or m.startswith("finished after") for m in messages), messages


def test_the_ray_executor_without_ray_says_how_to_install_it(monkeypatch, isolated_settings):
    from galaxy_core.training.executors import ExecutorUnavailableError
    from galaxy_core.training.ray_executor import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    executor = RayExecutor(load_settings())
    with pytest.raises(
        ExecutorUnavailableError, match=r'needs Ray on this machine: pip install "galaxy-cnn-lab\[cluster\]"'
    ):
        executor.check()


READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, subprocess, sys
    from streamlit.testing.v1 import AppTest
    from galaxy_core.cli import main
    runs = sys.argv[1]
    subprocess.run(["mount", "--bind", runs, runs], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", runs], check=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        listed = main(["runs"])
        trained = main(["train", "--epochs", "1", "--num-images", "30", "--image-size", "16", "--model", "custom_cnn"])
    from tests.helpers import page_script
    page = AppTest.from_string(page_script("train"), default_timeout=120).run()
    print(json.dumps([listed, trained, err.getvalue().strip().splitlines()[-1], bool(page.exception)]))
    """
)


def test_a_read_only_runs_folder_is_said_plainly(isolated_settings):
    listed, trained, message, page_failed = in_a_mount_namespace(READ_ONLY_SCRIPT, isolated_settings["runs"])
    assert (listed, trained, page_failed) == (0, 2, False)
    assert message == (
        f"error: the runs folder {isolated_settings['runs']} cannot be written (Read-only file system): check "
        "runs_dir and the disk"
    )


def standby_workers(supervisor_pid: int) -> list[int]:
    """The standby workers the service started (its children waiting with TensorFlow imported)."""
    children = subprocess.run(["pgrep", "-P", str(supervisor_pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in children if "--standby" in Path(f"/proc/{pid}/cmdline").read_text()]


def test_runs_of_seconds_train_in_light_slots_beside_a_long_run(isolated_settings, finished_run):
    """One ordinary slot holds a long run; three heads on the finished run's features (runs of seconds) train
    beside it, two at once (max_light_runs 2), the third when one of them has ended."""
    from galaxy_core.training.kinds.transfer import transfer_config

    client = ServiceClient(isolated_settings["runs"])
    long = client.submit(tiny_config(epochs=LONG), MACHINE_TEACHER)
    wait_for(lambda: has_epoch(long), timeout=120)
    base = finished_run.summary()
    heads = [client.submit(transfer_config(base, epochs=2, seed=number), MACHINE_TEACHER) for number in range(3)]
    assert all(head.summary().is_light for head in heads)
    wait_for(lambda: all(state_of(head) is RunState.FINISHED for head in heads), timeout=240)
    assert state_of(long) is RunState.RUNNING  # they did not wait for its slot
    first, second, third = (head.summary() for head in heads)
    assert second.started < first.finished and first.started < second.finished  # two at once
    assert third.dispatched >= min(first.finished, second.finished)  # the third waited for a light slot
    client.stop(long.id, MACHINE_TEACHER)
    wait_for(lambda: state_of(long) is RunState.STOPPED, timeout=120)


def test_a_worker_stays_warm_after_a_run_of_seconds_and_leaves_after_another(isolated_settings, finished_run):
    """A head on a frozen base ends, and its standby worker waits for the next run: the next head goes to it (the
    same pid) and finds the base loaded; a training run handed to it ends it."""
    from galaxy_core.training.kinds.transfer import transfer_config

    client = ServiceClient(isolated_settings["runs"])
    base = finished_run.summary()
    heads = []
    for seed in range(3):  # the first may start before any worker waits on standby
        heads.append(client.submit(transfer_config(base, epochs=2, seed=seed), MACHINE_TEACHER))
        wait_for(lambda: state_of(heads[-1]) is RunState.FINISHED, timeout=120)
    second, third = heads[1].summary(), heads[2].summary()
    assert third.pid == second.pid and "already loaded in this worker" in heads[2].log_tail()
    assert third.has_test_results
    heavy = client.submit(tiny_config(epochs=1), MACHINE_TEACHER)
    wait_for(lambda: state_of(heavy) is RunState.FINISHED, timeout=120)
    assert heavy.summary().pid == third.pid  # the warm worker went first
    wait_for(lambda: not process_alive(third.pid, third.pid_start), timeout=30)  # and left after it
