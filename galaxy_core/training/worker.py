"""The local training worker: one process per run, `python -m galaxy_core.training.worker RUN_DIR`, or
`python -m galaxy_core.training.worker --standby`: a worker that imports TensorFlow first and then waits for the
folder of its run on its standard input (it leaves when that closes: the service that started it has gone).

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


def _wait_for_a_run() -> Path | None:
    """On standby: TensorFlow imported, the run's folder read from standard input (None when it closes first), and
    this process's output sent to the run's worker.out from then on."""
    from galaxy_core.training.device import configure_device

    configure_device()
    line = sys.stdin.readline().strip()
    if not line:
        return None
    folder = Path(line)
    output = os.open(Run(folder).worker_output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    return folder


def main(argv: list[str] | None = None) -> int:
    from galaxy_core.training.procedure import train_run

    parser = argparse.ArgumentParser(
        prog="python -m galaxy_core.training.worker",
        description="Train one queued run. The training service starts it; people use `galaxy-lab train`.",
    )
    parser.add_argument("run_dir", nargs="?", type=Path, help="the run's folder")
    parser.add_argument("--standby", action="store_true", help="import TensorFlow, then read the run's folder")
    args = parser.parse_args(argv)
    if args.standby == (args.run_dir is not None):
        parser.error("give a run folder or --standby")
    folder = _wait_for_a_run() if args.standby else args.run_dir
    if folder is None:
        return EXIT_RECORDED  # no run came: nothing to record
    run = Run(folder)
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
    return EXIT_RECORDED


if __name__ == "__main__":
    sys.exit(main())
