"""A lesson through the lab's training service: the teacher's base run, then every student's transfer run from it,
queued at once, each student's own run (their own folder, owner and seed).

The service level of issue #36's lesson: the runs go through `ServiceClient.submit` and the real training service
(its supervisor, fair-share queue, standby worker and one worker process per run), as the Train page's "Train from
this run" queues them, without the pages or their sessions in front. Prints the wall clock from the class's clicks
until every student has a result (goal <= 2 min), each student's click-to-result p50/p95 (goal p95 <= 60 s), and
where a run's time goes: waiting in the queue (created -> dispatched), its process starting (dispatched -> started:
the standby worker's hand-over), and its procedure (started -> finished: dataset, features, head, test), in a
worker's first run and in a warm worker that took it after another (the base then loaded already). Then each
run's test balanced accuracy (their spread: seeds of their own; the labels are noisy, about 9 points of balanced
accuracy are doubtful labels).

    .venv/bin/python benchmarks/bench_lesson.py [--students 30] [--data PATH] [--base-preset quick] [--light-slots 1,2]
    .venv/bin/python benchmarks/bench_lesson.py --pages [--students 30] [--work DIR]

With --pages, the same lesson through the pages of a real `galaxy-lab serve` (lesson_pages.py), then a second one
with the server restarted in its middle.

The lesson runs once per --light-slots value, one after the other in this one process (this machine's speed varies
from hour to hour: compare the lessons of one run of the script, not figures of different runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from lesson_pages import lesson_through_pages
from page_sessions import percentile

from galaxy_core.classroom.lesson import lesson_base
from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, User
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.settings import load_settings
from galaxy_core.training import RunStore
from galaxy_core.training.client import ServiceClient, new_run, train_in_this_process
from galaxy_core.training.config import preset_config
from galaxy_core.training.kinds.transfer import transfer_config
from galaxy_core.training.service import end_supervisor

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"


def base_run(store: RunStore, spec: DatasetSpec, preset: str):
    """The teacher's base, trained here before the lesson (its minutes are not the lesson's)."""
    config = preset_config(spec, preset, seed=0)
    create_dataset(config.dataset, cache_dir=load_settings().cache_dir)
    run = new_run(store, config, MACHINE_TEACHER)
    started = time.perf_counter()
    if train_in_this_process(run) != "finished":
        raise SystemExit(f"error: the base run ended {run.summary().message}")
    print(
        f"base: {preset} on {spec.source}, {(time.perf_counter() - started) / 60:.1f} min, test balanced "
        f"accuracy {run.summary().test_balanced_accuracy:.3f}",
        flush=True,
    )
    return run.summary()


def lesson(client: ServiceClient, base, students: int, class_name: str) -> list:
    """Every student of `class_name` queues a transfer run from `base` at once; returns their summaries once all
    have ended."""
    people = [User(f"{class_name}-{n}", f"Student {n}", STUDENT) for n in range(1, students + 1)]
    clicked = time.time()
    runs = [client.submit(transfer_config(base), person) for person in people]
    print(f"{students} runs queued in {time.time() - clicked:.1f} s", flush=True)
    while any(run.summary().state.active for run in runs):
        client.ensure_service(client.store.runs(active_only=True))
        time.sleep(1)
    summaries = [run.summary() for run in runs]
    ended = [summary.finished for summary in summaries if summary.finished]
    print(f"all {students} ended {max(ended) - clicked:.0f} s after the class's clicks (goal <= 120 s)")
    return summaries


def report(summaries: list) -> None:
    waits = [summary.finished - summary.created for summary in summaries if summary.finished]
    print(
        f"click to result: p50 {percentile(waits, 0.5):.0f} s, p95 {percentile(waits, 0.95):.0f} s (goal p95 <= 60 s)"
    )
    phases = {
        "queued (created -> dispatched)": [s.dispatched - s.created for s in summaries if s.dispatched],
        "starting (dispatched -> started)": [s.started - s.dispatched for s in summaries if s.started and s.dispatched],
        "its procedure (started -> finished)": [s.finished - s.started for s in summaries if s.finished and s.started],
    }
    for name, seconds in phases.items():
        print(f"  {name}: median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s")
    seen, fresh, warm = set(), [], []  # a worker's first run, and the runs it took warm after it
    for summary in sorted((s for s in summaries if s.started and s.finished), key=lambda s: s.started):
        (warm if summary.pid in seen else fresh).append(summary.finished - summary.started)
        seen.add(summary.pid)
    print(
        f"  its procedure in a worker's first run: median {statistics.median(fresh):.1f} s ({len(fresh)} runs); "
        + (f"in a warm worker: median {statistics.median(warm):.1f} s ({len(warm)} runs)" if warm else "none warm")
    )
    figures = [summary.test_balanced_accuracy for summary in summaries if summary.test_balanced_accuracy is not None]
    seeds = {summary.seed for summary in summaries}
    print(
        f"test balanced accuracy {min(figures):.3f} to {max(figures):.3f} over {len(figures)} runs, "
        f"{len(seeds)} different seeds; states: {sorted({summary.state.value for summary in summaries})}"
    )


def teacher_tries_it(store: RunStore, base) -> None:
    """The teacher's own transfer run before the class's: it computes the base's features, which every student's
    run then reads from the cache (each lesson below starts with them cached alike)."""
    run = new_run(store, transfer_config(base), MACHINE_TEACHER)
    started = time.perf_counter()
    if train_in_this_process(run) != "finished":
        raise SystemExit(f"error: the teacher's transfer run ended {run.summary().message}")
    print(f"the teacher's own transfer run (features computed): {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--base-preset", default="quick")
    parser.add_argument(
        "--light-slots",
        default="1,2",
        help="max_light_runs of each lesson, in order (default 1,2: the same lesson with one light slot, then two)",
    )
    parser.add_argument("--pages", action="store_true", help="the lesson through the pages of a real server")
    parser.add_argument("--work", type=Path, help="a folder to keep (and reuse: the teacher's base) between runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = args.work or Path(folder)
        os.environ.setdefault("GALAXY_LAB_CACHE_DIR", str(work / "cache"))
        os.environ["GALAXY_LAB_RUNS_DIR"] = str(work / "runs")
        settings = load_settings()
        spec = DatasetSpec.of("folder", path=str(args.data.resolve())).with_preprocess(crop_fraction=0.4)
        client = ServiceClient.from_settings(settings)
        print(f"{os.cpu_count()} CPU cores, max_concurrent_runs {settings.max_concurrent_runs}", flush=True)
        base = lesson_base(client.store)  # the class's starting run of an earlier --pages run in --work
        if base is None:
            base = base_run(client.store, spec, args.base_preset)
            teacher_tries_it(client.store, base)
        if args.pages:
            lesson_through_pages(work, args.students, base, spec, args.data)
            return
        ended = {}
        for slots in [int(count) for count in args.light_slots.split(",")]:
            os.environ["GALAXY_LAB_MAX_LIGHT_RUNS"] = str(slots)  # read by the service this lesson starts
            print(f"\nmax_light_runs {slots}:", flush=True)
            try:
                summaries = lesson(client, base, args.students, f"class-{slots}")
            finally:
                end_supervisor(client.store.root)
            report(summaries)
            ended[slots] = max(summary.finished for summary in summaries) - min(s.created for s in summaries)
        if len(ended) > 1:
            print("\nthe whole class's results: " + ", ".join(f"{s} light slot(s) {t:.0f} s" for s, t in ended.items()))


if __name__ == "__main__":
    main()
