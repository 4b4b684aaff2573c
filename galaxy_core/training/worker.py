"""The local training worker: one process per run, `python -m galaxy_core.training.worker RUN_DIR`.

The training service (galaxy_core.training.supervisor) starts it in a session of its own, so closing a browser
or a terminal does not stop it. It trains the run through the run store (galaxy_core.training.procedure), and
shows it is alive by touching the run's heartbeat every few seconds. SIGTERM asks it to stop gracefully, like the
Stop button. Its exit status tells the supervisor what the run folder may not be able to: 0 finished or stopped,
1 failed (recorded), EXIT_NO_SPACE failed on a full disk without being able to record it.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from pathlib import Path

from galaxy_core.training.store import Run, RunState

HEARTBEAT_SECONDS = 2.0
EXIT_NO_SPACE = 28  # errno's ENOSPC
EXIT_UNRECORDED = 3  # the run failed and the failure could not be written
EXIT_FOLDER_GONE = 4  # the run folder was deleted while the run trained


def _keep_beating(run: Run, done: threading.Event) -> None:
    """Touch the heartbeat while the process lives; leave when the run folder is deleted (nowhere to write)."""
    from galaxy_core.training.supervisor import ensure_supervisor

    beats = 0
    while not done.wait(HEARTBEAT_SECONDS if beats else 0):
        if not run.exists():
            print(f"the run folder {run.path} was deleted: the worker stops", file=sys.stderr, flush=True)
            os._exit(EXIT_FOLDER_GONE)
        try:
            run.beat()
        except OSError as error:
            print(f"cannot touch the heartbeat: {error}", file=sys.stderr, flush=True)
        beats += 1
        if beats % 5 == 0:  # the service watches this worker; this worker restarts a service that died
            ensure_supervisor(run.path.parent)


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
        state = train_run(run)
    except OSError as error:  # the run failed, and writing that down failed too
        print(f"the run failed and this could not be recorded: {error}", file=sys.stderr, flush=True)
        return EXIT_NO_SPACE if error.errno == errno.ENOSPC else EXIT_UNRECORDED
    finally:
        done.set()
    return 0 if state in (RunState.FINISHED, RunState.STOPPED) else 1


if __name__ == "__main__":
    sys.exit(main())
