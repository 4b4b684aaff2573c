"""The local training worker: one process per run, `python -m galaxy_core.training.worker RUN_DIR`, or
`python -m galaxy_core.training.worker --standby --reports FD`: a worker that imports TensorFlow first and then
waits for the folder of its run on its standard input (it leaves when that closes: the service that started it has
gone). After a run of seconds (a head on a trained run's cached features) a standby worker says so on FD and waits
for the next run's folder, warm: a lesson's heads then cost what their training costs, not a process each.

The training service (galaxy_core.training.supervisor) starts it in a session of its own, so closing a browser
or a terminal does not stop it. It trains the run (galaxy_core.training.procedure), which reports its progress
through the run store, writes the run's outcome to the run folder and exits: the service, its parent, then
records that outcome as the run's final state. It touches the run's heartbeat every few seconds while it lives.
SIGTERM asks it to stop gracefully, like the Stop button. Its exit status tells the service what the run folder
may not be able to (galaxy_core.training.lifecycle: a full disk, a deleted folder).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from pathlib import Path

from galaxy_core.training.lifecycle import EXIT_FOLDER_GONE, EXIT_NO_SPACE, EXIT_RECORDED, EXIT_UNRECORDED
from galaxy_core.training.store import Run

HEARTBEAT_SECONDS = 2.0
# Runs of seconds one standby worker trains before it leaves (a new one takes its place): bounds what a long-lived
# TensorFlow process may accumulate.
MAX_RUNS_PER_WORKER = 50


def _keep_beating(run: Run, done: threading.Event) -> None:
    """Touch the heartbeat while the process lives; leave when the run folder is deleted (nowhere to write)."""
    while not done.is_set():
        if not run.exists():
            print(f"the run folder {run.path} was deleted: the worker stops", file=sys.stderr, flush=True)
            os._exit(EXIT_FOLDER_GONE)
        try:
            run.beat()
        except OSError as error:
            print(f"cannot touch the heartbeat: {error}", file=sys.stderr, flush=True)
        done.wait(HEARTBEAT_SECONDS)


def _ask_to_stop(run: Run) -> None:
    try:
        run.request_stop()
    except OSError as error:
        print(f"cannot record the stop request: {error}", file=sys.stderr, flush=True)


def _next_folder() -> Path | None:
    """The next run's folder, read from standard input; None when it closes (the service that started this worker
    has gone)."""
    line = sys.stdin.readline().strip()
    return Path(line) if line else None


def _output_to(path: Path) -> None:
    """This process's output (and TensorFlow's) to `path` from now on."""
    output = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)


def train_one(run: Run) -> int:
    """Train `run` and write its outcome; returns the exit status that says how that went (lifecycle's EXIT_*).
    SIGTERM asks the run to stop while it trains."""
    from galaxy_core.training.procedure import train_run

    signal.signal(signal.SIGTERM, lambda *_: _ask_to_stop(run))
    done = threading.Event()
    threading.Thread(target=_keep_beating, args=(run, done), daemon=True, name="heartbeat").start()
    try:
        run.save_outcome(train_run(run))
    except OSError as error:  # the run ended, and writing down how failed
        print(f"the run's outcome could not be recorded: {error}", file=sys.stderr, flush=True)
        return EXIT_NO_SPACE if error.errno == errno.ENOSPC else EXIT_UNRECORDED
    finally:
        done.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return EXIT_RECORDED


def stays_for_another(run: Run, code: int, runs_done: int) -> bool:
    """Whether a standby worker waits for another run after `run`: after a run of seconds that recorded its outcome
    (its memory is small; the next head of the same base finds that base loaded), up to MAX_RUNS_PER_WORKER."""
    try:
        light = run.summary().is_light
    except (OSError, ValueError):
        return False
    return code == EXIT_RECORDED and light and runs_done < MAX_RUNS_PER_WORKER


def serve_runs(reports: int) -> int:
    """On standby: TensorFlow imported, then each run whose folder comes on standard input, trained in turn; after
    each run that lets it stay (`stays_for_another`) it writes "ended STATUS" to the file descriptor `reports` and
    waits for the next, else it exits with that status."""
    from galaxy_core.training.device import configure_device

    configure_device()
    own_output = os.dup(1)
    runs_done = 0
    while (folder := _next_folder()) is not None:
        run = Run(folder)
        _output_to(run.worker_output_path)
        code, runs_done = train_one(run), runs_done + 1
        if not stays_for_another(run, code, runs_done):
            return code
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(own_output, 1)
        os.dup2(own_output, 2)
        os.write(reports, f"ended {code}\n".encode())
    return EXIT_RECORDED  # no run came: nothing to record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m galaxy_core.training.worker",
        description="Train one queued run. The training service starts it; people use `galaxy-lab train`.",
    )
    parser.add_argument("run_dir", nargs="?", type=Path, help="the run's folder")
    parser.add_argument("--standby", action="store_true", help="import TensorFlow, then read runs' folders")
    parser.add_argument(
        "--reports", type=int, metavar="FD", help="with --standby: where to say that a run ended and it waits on"
    )
    args = parser.parse_args(argv)
    if args.standby == (args.run_dir is not None) or args.standby != (args.reports is not None):
        parser.error("give a run folder, or --standby with --reports")
    return serve_runs(args.reports) if args.standby else train_one(Run(args.run_dir))


if __name__ == "__main__":
    sys.exit(main())
