"""`galaxy-lab serve`: the web app in a Streamlit child process, its signals passed on, and its warm-up."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from galaxy_core.classroom.challenge import scoring_root
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.classroom.serving import sign_in_summary
from galaxy_core.cli.common import client_for, wait_passing_signals_on
from galaxy_core.errors import GalaxyLabError
from galaxy_core.training.client import ServiceClient


def server_file() -> Path:
    """The app's server, serve.py (the router app.py with the sign-in routes): beside the galaxy_core package, in a
    checkout as in an installed wheel."""
    folder = Path(__file__).resolve().parents[2]
    if not all((folder / name).is_file() for name in ("serve.py", "app.py", "pages/ui/navigation.py")):
        raise GalaxyLabError(f"the app (serve.py, app.py and pages/) is not beside galaxy_core in {folder}")
    return folder / "serve.py"


def serve_command(commands) -> None:
    parser = commands.add_parser("serve", help="start the web app")
    parser.add_argument("--port", type=int, default=8501, help="the port to serve on (default 8501)")
    parser.add_argument(
        "--address",
        help="the address to serve on: every address of this machine by default with sign-in (0.0.0.0 asks for it), "
        '127.0.0.1 for this machine only (the default with auth = "none", where whoever opens the lab is the teacher)',
    )
    parser.add_argument("--headless", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--keep-training",
        action="store_true",
        help="when serve stops, leave queued and training runs to the training service (a restart); by default "
        "they are stopped, each keeping what it learned, and the service ends with serve",
    )
    parser.set_defaults(run=_serve)


def _run_the_app_once(port: int) -> None:
    """Once the server answers, have it run the app once (Streamlit's script health check: Home, in a session of
    its own), which starts the server's warm-up (the default dataset, the pages' modules, TensorFlow) before the
    first person visits rather than during their first clicks. Nothing is said if it cannot: visits still work."""
    base = f"http://127.0.0.1:{port}/_stcore"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/health", timeout=2).read() == b"ok":
                urllib.request.urlopen(f"{base}/script-health-check", timeout=120).read()
                return
        except OSError:
            time.sleep(0.5)


def _serve(args, settings) -> int:
    """Streamlit in a child process (SIGINT and SIGTERM are passed on to it; serve returns when it has ended), the
    app run once as soon as it answers (to start the server's warm-up), and beside it a low-priority warm-up of the
    default dataset's cache and TensorFlow's files."""
    app = server_file()
    address = args.address or ("127.0.0.1" if settings.auth == "none" else None)  # None: every address
    print("\n".join(f"galaxy-lab: {line}" for line in sign_in_summary(settings, address, args.port)), flush=True)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        f"--server.maxUploadSize={settings.upload_limit_mb}",
        f"--server.port={args.port}",
        "--server.scriptHealthCheckEnabled=true",
        "--runner.postScriptGC=false",  # see .streamlit/config.toml
    ]
    if address:
        command.append(f"--server.address={address}")
    if args.headless:
        command.append("--server.headless=true")
    client = client_for(args, settings)
    client.ensure_service(client.store.runs())  # resume the queue after a restart, before anyone looks
    quiet = {} if args.verbose else {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    proxies = {"FORWARDED_ALLOW_IPS": ",".join(settings.trusted_proxies)}  # uvicorn's own variable
    server = subprocess.Popen(command, env={**os.environ, **quiet, **proxies})
    warm_up = subprocess.Popen([sys.executable, "-m", "galaxy_core.warm_up"], env={**os.environ, **quiet})
    threading.Thread(target=warm_up.wait, daemon=True, name="warm-up-reaper").start()  # no zombie once it is done
    threading.Thread(target=_run_the_app_once, args=(args.port,), daemon=True, name="first-run").start()
    status = wait_passing_signals_on(server)
    warm_up.terminate()  # done long since, unless the server was stopped at once
    warm_up.wait()
    try:
        _end_training(client, settings, args.keep_training)
    except (GalaxyLabError, OSError) as error:  # a runs folder gone or unreadable: the server has stopped anyway
        print(f"galaxy-lab: the training service was left as it was: {error}", file=sys.stderr, flush=True)
    return status


def _end_training(client, settings, keep_training: bool) -> None:
    """What serve started for training ends with it: the runs still queued or training are stopped (or left, with
    --keep-training), then the training service and its standby worker."""
    active = client.store.runs(active_only=True)
    if active and not keep_training:
        print(
            f"galaxy-lab: stopping {len(active)} queued or training run(s), each keeping what it learned "
            "(serve --keep-training leaves them to the training service)",
            flush=True,
        )
    left = client.shut_down(MACHINE_TEACHER, keep_training=keep_training, timeout=settings.stop_grace_seconds + 30)
    if left:
        print(
            f"galaxy-lab: {len(left)} run(s) go on in the training service, which ends by itself once the queue is "
            "empty: galaxy-lab runs shows them",
            flush=True,
        )
    # A challenge's scoring runs take seconds: any still queued finish, then their service leaves by itself
    ServiceClient.from_settings(settings, scoring_root(settings.runs_dir)).shut_down(
        MACHINE_TEACHER, keep_training=True, timeout=0
    )
