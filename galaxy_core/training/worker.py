"""The local training worker: one process per run, `python -m galaxy_core.training.worker RUN_DIR`.

The training service (galaxy_core.training.supervisor) starts it in a session of its own, so closing a browser
or a terminal does not stop it. It trains the run (galaxy_core.training.procedure), which reports its progress
through the run store, writes the run's outcome to the run folder and exits: the service, its parent, then
records that outcome as the run's final state. It touches the run's heartbeat every few seconds while it lives.
SIGTERM asks it to stop gracefully, like the Stop button. Its exit status tells the service what the run folder
may not be able to (galaxy_core.training.lifecycle: a full disk, a deleted folder).
"""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> int:
    from galaxy_core.training.procedure import train_run

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m galaxy_core.training.worker RUN_DIR", file=sys.stderr)
        return 2
    run = Run(Path(args[0]))
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
