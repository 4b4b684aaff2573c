"""The first minute of a run: from pressing Train (the run queued) to its first batch, stage by stage, against the
floor of a fresh Python process that imports TensorFlow, builds the same model and fits one batch of the same size.

For each recipe (Quick, Recommended) on gz1-3class (its cache filled first), through the lab's own training service
and worker: cold (a fresh service, no worker waiting) and warm (a worker on standby with TensorFlow imported, as
the service keeps one while a slot is free). Each run is stopped once its first batch is recorded. Then the whole
again with a CPU-bound process running beside it (`--busy`, or both with `--both`).

Goals (issue #26): queued -> first batch <= 1.2x the floor, and <= 0.5x the floor with a warm worker waiting.

`--first-eta`: instead, each recipe trained to its end through the service (idle machine), and the first time
left it was given (during its first epoch, once the batches after the first give a pace) against the time it
really took from then on. Goal: within 50%.

    .venv/bin/python benchmarks/bench_first_batch.py [--data PATH] [--both | --first-eta]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.config import preset_config
from galaxy_core.training.service import ServiceFiles

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
RECIPES = ("quick", "recommended")
FLOOR = """
import json, os, sys, time
started = float(sys.argv[1])
from galaxy_core.runtime import import_tensorflow
import_tensorflow()
imported = time.time()
import numpy as np
from galaxy_core.models import create_model
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.recipe import make_optimizer
config = TrainConfig.from_dict(json.loads(sys.argv[2]))
model = create_model(config.model, config.input_shape, 3, **config.model_options)
model.compile(optimizer=make_optimizer(config, config.learning_rate, 100), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
built = time.time()
images = np.random.default_rng(0).integers(0, 256, (config.batch_size, *config.input_shape), dtype=np.uint8)
model.fit(images, np.arange(config.batch_size) % 3, batch_size=config.batch_size, epochs=1, verbose=0)
print(json.dumps({"import": imported - started, "build": built - imported, "first batch": time.time() - built}))
"""


def floor(config) -> dict:
    """A fresh process: import TensorFlow, build and compile the model, fit one batch."""
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", FLOOR, str(started), json.dumps(config.to_dict())],
        capture_output=True,
        text=True,
        check=True,
    )
    stages = json.loads(done.stdout.strip().splitlines()[-1])
    return {**stages, "total": time.time() - started}


def wait(predicate, timeout: float = 600.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit("error: timed out (is the training service running?)")


def first_batch_stages(client: ServiceClient, config) -> dict:
    """Queue a run, wait for its first batch, stop it; the seconds from queueing to each stage."""
    run = client.submit(config, MACHINE_TEACHER)
    queued = run.summary().created

    def first_batch():
        return next((m for m in run.metrics() if m["kind"] == "batch"), None)

    batch = wait(first_batch)
    client.stop(run.id, MACHINE_TEACHER)
    records = run.metrics()
    summary = wait(lambda: run.summary() if not run.summary().state.active else None)
    stages = {"dispatched": summary.dispatched - queued}
    stages.update({m["stage"]: m["time"] - queued for m in records if m["kind"] == "stage"})
    stages["first batch"] = batch["time"] - queued
    return stages


def first_eta(spec: DatasetSpec) -> None:
    """Each recipe trained to its end: its first ETA against the time it then took."""
    print("\nthe first time left given, against the time the run then took (idle machine)", flush=True)
    for name in RECIPES:
        config = preset_config(spec, name)
        create_dataset(config.dataset, cache_dir=os.environ["GALAXY_LAB_CACHE_DIR"])
        with tempfile.TemporaryDirectory() as runs:
            given, ended = eta_and_end(ServiceClient(runs), config)
            stop_service(Path(runs))
        took = ended.finished - given["at"]
        print(
            f"{name}: given at batch {given['batches']}/{ended.steps_per_epoch} of epoch 1: {given['eta']:.0f} s; "
            f"it took {took:.0f} s ({ended.message}); error {given['eta'] / took - 1:+.0%}",
            flush=True,
        )


def eta_and_end(client: ServiceClient, config) -> tuple[dict, object]:
    """Queue a run; its first ETA (when, how much, at which batch), and its summary once it has ended."""
    run = client.submit(config, MACHINE_TEACHER)
    summary = wait(lambda: run.summary() if run.summary().eta_seconds is not None else None, interval=0.05)
    given = {"at": time.time(), "eta": summary.eta_seconds, "batches": summary.batches_done}
    return given, wait(lambda: run.summary() if not run.summary().state.active else None, timeout=3600, interval=1)


def standby_ready(runs: Path) -> bool:
    """A worker waits on standby with TensorFlow imported (it wrote its import's lines and waits for a run)."""
    pid = (ServiceFiles(runs).status() or {}).get("pid")
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return any("--standby" in Path(f"/proc/{c}/cmdline").read_text() for c in children if Path(f"/proc/{c}").exists())


def measure(spec: DatasetSpec, busy: bool) -> None:
    print(f"\n{'with a CPU-bound process beside it' if busy else 'idle machine'}", flush=True)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        for name in RECIPES:
            config = preset_config(spec, name)
            create_dataset(config.dataset, cache_dir=os.environ["GALAXY_LAB_CACHE_DIR"])  # the cache, filled
            base = floor(config)
            with tempfile.TemporaryDirectory() as runs:
                client = ServiceClient(runs)
                cold = first_batch_stages(client, config)
                wait(lambda runs=runs: standby_ready(Path(runs)), timeout=120)
                time.sleep(15)  # the standby's import done (it then waits on its input)
                warm = first_batch_stages(client, config)
                stop_service(Path(runs))
            report(name, config, base, cold, warm)
    finally:
        if hog is not None:
            hog.kill()


def stop_service(runs: Path) -> None:
    import signal

    pid = (ServiceFiles(runs).status() or {}).get("pid")
    with contextlib.suppress(ProcessLookupError, TypeError):
        os.kill(pid, signal.SIGTERM)
    wait(lambda: not ServiceFiles(runs).running(), timeout=30)


def report(name: str, config, base: dict, cold: dict, warm: dict) -> None:
    print(f"{name}: {config.model} at {config.input_shape[0]} px, batch {config.batch_size}")
    print("  floor (a fresh process): " + ", ".join(f"{k} {v:.1f} s" for k, v in base.items()))
    for label, stages in (("cold", cold), ("warm (worker on standby)", warm)):
        ratio = stages["first batch"] / base["total"]
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
        print(f"  {label}: queued -> {steps}; {ratio:.2f}x the floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--busy", action="store_true", help="only with a CPU-bound process beside it")
    parser.add_argument("--both", action="store_true", help="idle, then with a CPU-bound process beside it")
    parser.add_argument("--first-eta", action="store_true", help="the first time left given, against the truth")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to gz1-3class")
    os.environ.setdefault("GALAXY_LAB_CACHE_DIR", str(Path(tempfile.gettempdir()) / "galaxy-lab-bench-cache"))
    spec = DatasetSpec.of("folder", path=str(args.data)).with_preprocess(crop_fraction=0.4)
    print(f"{os.cpu_count()} cores; gz1-3class (crop 0.4)")
    if args.first_eta:
        first_eta(spec)
        return
    for busy in (False, True) if args.both else (args.busy,):
        measure(spec, busy)


if __name__ == "__main__":
    main()
