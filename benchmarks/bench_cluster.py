"""The training service, measured in one run of this script on this machine:

1. the same short runs through the local executor (worker processes, one at a time as on a 2-core server) and
   through a local 2-node Ray cluster (1 CPU each, two at a time): wall time for the batch, and per run the cost
   of starting (dispatched to first epoch, minus that epoch's own training time) and of finishing (last epoch to
   test evaluation stored). The Ray path's overhead per run is its cost minus the local one (goal <= 5 s);
2. how long a metrics record takes to reach the head's run store from a worker on a Ray node (goal <= 2 s),
   seen by a reader polling the run folder every 20 ms;
3. supervision latency: `kill -9` of a local worker with a run queued, to that run marked interrupted and the
   next one started (goal <= 5 s).

    .venv/bin/python benchmarks/bench_cluster.py [--runs 4] [--epochs 3] [--num-images 600]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.training import RunState, RunSummary
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.records import epoch_records

POLL = 0.02


def config(args, seed: int, epochs: int | None = None) -> TrainConfig:
    return TrainConfig(
        dataset={"name": "synthetic", "num_images": args.num_images, "image_size": 32},
        model="custom_cnn",
        model_options={"blocks": 2, "filters": 16},
        epochs=epochs or args.epochs,
        batch_size=32,
        early_stopping=False,
        seed=seed,
    )


def wait(predicate, timeout: float = 900.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(POLL)
    raise SystemExit("error: timed out")


def costs(summary: RunSummary) -> tuple[float, float]:
    """(start cost, finish cost) of a finished run, in seconds."""
    epochs = epoch_records(summary.run.metrics())
    first_epoch_began = epochs[0]["time"] - epochs[0]["epoch_seconds"]
    return first_epoch_began - summary.dispatched, summary.finished - epochs[-1]["time"]


def watch_delays(runs, delays: list[float], stop: threading.Event) -> None:
    """Seconds from a record's time (when the worker wrote it) to its first sight in the head's run store."""
    offsets = dict.fromkeys(runs, 0)
    while not stop.is_set():
        for run in runs:
            records, offsets[run] = run.read_metrics(offsets[run])
            now = time.time()
            delays.extend(now - record["time"] for record in records)
        time.sleep(POLL)


def batch(args, runs_root: Path, executor: str, address: str | None = None) -> dict:
    os.environ["GALAXY_LAB_EXECUTOR"] = executor
    os.environ["GALAXY_LAB_MAX_CONCURRENT_RUNS"] = "1" if executor == "local" else "2"
    if address:
        os.environ["GALAXY_LAB_RAY_ADDRESS"] = address
    client = ServiceClient(runs_root / executor)
    began = time.time()
    runs = [client.submit(config(args, seed), MACHINE_TEACHER) for seed in range(args.runs)]
    delays, stop = [], threading.Event()
    watcher = threading.Thread(target=watch_delays, args=(runs, delays, stop))
    watcher.start()
    wait(lambda: all(not run.summary().state.active for run in runs))
    stop.set()
    watcher.join()
    summaries = [run.summary() for run in runs]
    if any(s.state is not RunState.FINISHED for s in summaries):
        raise SystemExit(f"error: a run did not finish: {[s.message for s in summaries]}")
    wall = max(s.finished for s in summaries) - began
    start, finish = zip(*(costs(s) for s in summaries), strict=True)
    print(
        f"{executor:5s}: {args.runs} runs in {wall:.1f} s; start cost per run {statistics.mean(start):.2f} s "
        f"(runs: {', '.join(f'{x:.2f}' for x in start)}); finish cost {statistics.mean(finish):.2f} s; "
        f"nodes: {sorted({s.node for s in summaries})}"
    )
    return {"wall": wall, "start": statistics.mean(start), "finish": statistics.mean(finish), "delays": delays}


def supervision_latency(args, runs_root: Path) -> float:
    os.environ["GALAXY_LAB_EXECUTOR"] = "local"
    os.environ["GALAXY_LAB_MAX_CONCURRENT_RUNS"] = "1"
    client = ServiceClient(runs_root / "kill")
    killed, queued = (
        client.submit(config(args, 0, epochs=100), MACHINE_TEACHER),
        client.submit(config(args, 1, epochs=1), MACHINE_TEACHER),
    )
    wait(lambda: epoch_records(killed.metrics()))
    os.kill(killed.summary().pid, signal.SIGKILL)
    began = time.monotonic()
    wait(lambda: killed.summary().state is RunState.INTERRUPTED and queued.summary().state is RunState.RUNNING)
    latency = time.monotonic() - began
    print(f"kill -9 to run marked ({killed.summary().message!r}) and next started: {latency:.2f} s (goal <= 5 s)")
    wait(lambda: not queued.summary().state.active)
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num-images", type=int, default=600)
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    with tempfile.TemporaryDirectory() as work:
        os.environ.update(
            GALAXY_LAB_SETTINGS=str(Path(work) / "none.toml"),
            GALAXY_LAB_CACHE_DIR=str(Path(work) / "cache"),
            GALAXY_LAB_RUN_NUM_CPUS="1",
        )
        (Path(work) / "none.toml").write_text("")
        runs_root = Path(work) / "runs"
        print(f"{args.runs} runs of custom_cnn, {args.epochs} epochs on {args.num_images} synthetic galaxies at 32 px")
        local = batch(args, runs_root, "local")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        try:
            on_ray = batch(args, runs_root, "ray", cluster.address)
        finally:
            for folder in runs_root.iterdir():
                pid = (ServiceClient(folder).files.status() or {}).get("pid")
                if pid:
                    os.kill(pid, signal.SIGTERM)
            time.sleep(2)
            cluster.shutdown()
        latency = supervision_latency(args, runs_root)
        delays = sorted(on_ray["delays"])
        ratio = on_ray["wall"] / local["wall"]
        print(f"batch wall time, Ray (2 nodes x 1 CPU, 2 at a time) / local (1 at a time): {ratio:.2f}")
        start, finish = on_ray["start"] - local["start"], on_ray["finish"] - local["finish"]
        print(
            f"Ray overhead per run: start {start:+.2f} s, finish {finish:+.2f} s, total {start + finish:+.2f} s "
            "(goal <= 5 s)"
        )
        print(
            f"metrics record to the head's run store: median {statistics.median(delays):.2f} s, "
            f"95th percentile {delays[int(0.95 * (len(delays) - 1))]:.2f} s, max {delays[-1]:.2f} s over "
            f"{len(delays)} records (goal <= 2 s)"
        )
        print(f"supervision latency: {latency:.2f} s (goal <= 5 s)")


if __name__ == "__main__":
    main()
