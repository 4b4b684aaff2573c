"""A class at scale through the real scheduler: 30 students queue 2 runs each (and a teacher 1), and the training
service's supervisor starts them in fair-share order.

The supervisor, its run store and its fair-share choice are the lab's own (galaxy_core.training.supervisor); only
the training is a stand-in: an executor whose "runs" end after a fixed number of the supervisor's passes, so that
the order and the waits are measured in slot-turns, whatever the machine's speed. The runs are queued in the
least fair order there is: every student's two runs back to back, student after student.

Prints whether every student's first run started before any student's second, each student's wait (in runs started
before their first), and the old order's (oldest first) for comparison.

    .venv/bin/python benchmarks/bench_classroom.py [--students 30] [--slots 2]

With --watchers, a class watching instead: a real `streamlit run app.py` server, a Thorough run on gz1-3class
training through the lab's own service, and N sessions on its Train page (N = 0, then each of --watchers, then 0
again, each for --seconds). Each session is a real Streamlit session over the server's websocket: a small client
of Streamlit's own protocol (its protobuf messages) that opens the page and, as the browser does, reruns the page's
2-second fragment whenever the server asks it to (its "auto_rerun" message). No browser draws anything, so the
machine's CPU goes to the server and the training only. Prints, per N: the server process's CPU (cores, and per
session), the run's training throughput (its steps per second from its batch records, against the mean of the two
unwatched phases), and each refresh's time from the fragment's rerun request to its script_finished message (p50,
p95).

    .venv/bin/python benchmarks/bench_classroom.py --watchers 10 30 [--seconds 60] [--data PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from page_sessions import cpu_seconds, free_port, server_answers

from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, User
from galaxy_core.training import RunState, RunStore, TrainConfig
from galaxy_core.training.client import new_run
from galaxy_core.training.lifecycle import Outcome
from galaxy_core.training.supervisor import Supervisor

PASSES_PER_RUN = 3


class StandInExecutor:
    """Runs that "train" for PASSES_PER_RUN of the supervisor's passes, then finish."""

    name = "stand-in"

    def __init__(self) -> None:
        self.passes: dict[str, int] = {}
        self.order: list[str] = []

    def check(self) -> None:
        pass

    def start(self, run) -> dict:
        self.passes[run.id] = 0
        self.order.append(run.id)
        return {}

    def poll(self) -> list:
        from galaxy_core.training.executors import Ended

        ended = []
        for run_id in list(self.passes):
            self.passes[run_id] += 1
            if self.passes[run_id] >= PASSES_PER_RUN:
                del self.passes[run_id]
                ended.append(Ended(run_id, Outcome(RunState.FINISHED, "finished (stand-in)")))
        return ended

    def active(self) -> set[str]:
        return set(self.passes)

    def kill(self, run_id, outcome) -> None:
        self.passes.pop(run_id, None)

    def close(self) -> None:
        pass


def start_order(students: int, slots: int) -> tuple[list[str], dict[str, str]]:
    """(the run ids in the order the supervisor started them, {run id: owner's name})."""
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder))
        owners = {}
        config = TrainConfig(dataset={"name": "synthetic", "num_images": 60, "image_size": 16}, model="custom_cnn")
        for number in range(students):
            student = User(f"s{number:02d}", f"student {number:02d}", STUDENT)
            for _ in range(2):
                owners[new_run(store, config, student).id] = student.name
        owners[new_run(store, config, MACHINE_TEACHER).id] = "teacher"
        executor = StandInExecutor()
        supervisor = Supervisor(store, executor, max_concurrent=slots, stop_grace=30, max_training_per_student=1)
        started, passes = time.perf_counter(), 0
        while supervisor.step():
            passes += 1
        seconds = time.perf_counter() - started
        print(f"{passes} supervisor passes over {len(owners)} run folders: {1000 * seconds / passes:.1f} ms a pass")
        return executor.order, owners


def report(order: list[str], owners: dict[str, str], what: str) -> None:
    names = [owners[run_id] for run_id in order]
    firsts = {name: names.index(name) for name in set(names)}
    seconds = {name: len(names) - 1 - names[::-1].index(name) for name in set(names) if names.count(name) == 2}
    fair = max(firsts[name] for name in seconds) < min(seconds.values())
    waits = [firsts[name] for name in firsts if name != "teacher"]
    print(
        f"{what}: every first run before any second: {'yes' if fair else 'no'}; runs started before a student's "
        f"first: median {statistics.median(waits):.0f}, max {max(waits)}; the teacher's run was started as number "
        f"{names.index('teacher') + 1} of {len(names)}"
    )


class Watcher:
    """One session on the Train page over the server's websocket, rerunning the fragments the server asks it to."""

    def __init__(self, url: str) -> None:
        self.url, self.refresh_seconds, self.sent_at = url, [], None
        self.fragments: dict[str, float] = {}  # fragment id: its rerun interval

    async def watch(self, until: float) -> None:
        import websockets
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        async with websockets.connect(self.url, subprotocols=["streamlit"], max_size=2**26) as socket_:
            page = ClientState(page_name="train")
            await socket_.send(BackMsg(rerun_script=page).SerializeToString())
            next_rerun: dict[str, float] = {}
            while time.monotonic() < until:
                due = min(next_rerun.values(), default=time.monotonic() + 0.5)
                try:
                    data = await asyncio.wait_for(socket_.recv(), timeout=max(0.01, due - time.monotonic()))
                except TimeoutError:
                    data = None
                if data is not None:
                    message = ForwardMsg()
                    message.ParseFromString(data)
                    kind = message.WhichOneof("type")
                    if kind == "auto_rerun":
                        interval = message.auto_rerun.interval
                        next_rerun.setdefault(message.auto_rerun.fragment_id, time.monotonic() + interval)
                        self.fragments[message.auto_rerun.fragment_id] = interval
                    elif kind == "script_finished" and self.sent_at is not None:
                        self.refresh_seconds.append(time.monotonic() - self.sent_at)
                        self.sent_at = None
                for fragment, at in list(next_rerun.items()):
                    if at <= time.monotonic() and self.sent_at is None:
                        rerun = ClientState(page_name="train", fragment_id=fragment, is_auto_rerun=True)
                        self.sent_at = time.monotonic()
                        await socket_.send(BackMsg(rerun_script=rerun).SerializeToString())
                        next_rerun[fragment] = at + self.fragments[fragment]


def steps_per_second(run, since: float, until: float) -> float | None:
    batches = [r for r in run.metrics() if r.get("kind") == "batch" and since <= r["time"] <= until]
    if len(batches) < 2:
        return None
    return (batches[-1]["step"] - batches[0]["step"]) / (batches[-1]["time"] - batches[0]["time"])


def watched_phase(url: str, server_pid: int, run, watchers: int, seconds: float) -> dict:
    """N sessions watching for `seconds` (after 15 s of their first page loads): the figures of the phase."""
    clients = [Watcher(url) for _ in range(watchers)]

    async def phase() -> tuple[float, float, float, float]:
        until = time.monotonic() + 15 + seconds
        tasks = [asyncio.create_task(client.watch(until)) for client in clients]
        await asyncio.sleep(15)  # every session's first page, and the fragments' first reruns
        for client in clients:
            client.refresh_seconds.clear()
        cpu, started, wall = cpu_seconds(server_pid), time.time(), time.monotonic()
        await asyncio.gather(*tasks)
        await asyncio.sleep(max(0.0, until - time.monotonic()))  # a phase with no session lasts as long
        return cpu_seconds(server_pid) - cpu, time.monotonic() - wall, started, time.time()

    cpu, wall, since, until = asyncio.run(phase())
    refreshes = sorted(value for client in clients for value in client.refresh_seconds)
    return {
        "watchers": watchers,
        "cores": cpu / wall,
        "steps_per_second": steps_per_second(run, since, until),
        "refreshes": refreshes,
    }


def watching(watcher_counts: list[int], seconds: float, data: Path) -> None:
    from galaxy_core.data import DatasetSpec, create_dataset
    from galaxy_core.training.client import ServiceClient
    from galaxy_core.training.config import preset_config

    folder = Path(tempfile.mkdtemp(prefix="bench-watching-"))
    (folder / "galaxy-lab.toml").write_text("")
    env = {
        **os.environ,
        "GALAXY_LAB_SETTINGS": str(folder / "galaxy-lab.toml"),
        "GALAXY_LAB_RUNS_DIR": str(folder / "runs"),
        "GALAXY_LAB_CACHE_DIR": str(folder / "cache"),
    }
    os.environ.update(env)
    spec = DatasetSpec.of("folder", path=str(data.resolve())).with_preprocess(crop_fraction=0.4)
    config = preset_config(spec, "thorough")
    create_dataset(config.dataset, cache_dir=folder / "cache")
    client = ServiceClient(folder / "runs")
    run = client.submit(config, MACHINE_TEACHER)
    port = free_port()
    repo = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=repo,
        env=env,
        stdout=(folder / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not server_answers(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        while run.summary().epochs_done < 1:  # steady training: its first epoch and graph building are behind it
            time.sleep(2)
        print(f"{os.cpu_count()} cores; run {run.id} ({config.model} at {config.input_shape[0]} px) training")
        phases = []
        for count in [0, *watcher_counts, 0]:  # unwatched first and last: the machine's pace moves meanwhile
            phases.append(watched_phase(f"ws://127.0.0.1:{port}/_stcore/stream", server.pid, run, count, seconds))
            print(f"  {count} sessions: done", flush=True)
        print(
            "| sessions watching | server CPU (cores) | per session | training steps/s | vs none | refresh p50 | p95 |"
        )
        print("|---|---|---|---|---|---|---|")
        for phase in phases:
            report_phase(phase, [p for p in phases if p["watchers"] == 0])
    finally:
        client.stop(run.id, MACHINE_TEACHER)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def report_phase(phase: dict, unwatched: list[dict]) -> None:
    base = [p["steps_per_second"] for p in unwatched if p["steps_per_second"]]  # their mean: "none"
    pace = phase["steps_per_second"]
    ratio = f"{pace / statistics.mean(base):.2f}" if pace and base else "-"
    refreshes = phase["refreshes"]
    p50, p95 = (
        (f"{refreshes[len(refreshes) // 2]:.2f} s", f"{refreshes[int(0.95 * (len(refreshes) - 1))]:.2f} s")
        if refreshes
        else ("-", "-")
    )
    per = f"{phase['cores'] / phase['watchers']:.4f}" if phase["watchers"] else "-"
    steps = f"{pace:.2f}" if pace else "-"
    print(f"| {phase['watchers']} | {phase['cores']:.3f} | {per} | {steps} | {ratio} | {p50} | {p95} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--slots", type=int, default=2, help="runs training at once (max_concurrent_runs)")
    parser.add_argument("--watchers", type=int, nargs="*", help="a class watching: these numbers of sessions")
    parser.add_argument("--seconds", type=float, default=60.0, help="each watching phase's length")
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
    )
    args = parser.parse_args()
    if args.watchers:
        watching(args.watchers, args.seconds, args.data)
        return
    order, owners = start_order(args.students, args.slots)
    print(f"{args.students} students x 2 runs, queued student after student, and 1 teacher's run; {args.slots} slots")
    report(order, owners, "fair share")
    report(list(owners), owners, "oldest first (the lab before)")  # the order they were queued in


if __name__ == "__main__":
    main()
