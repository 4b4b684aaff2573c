"""A class challenge scored on a private test set: 30 students' submissions, scored by the training service.

gz1-3class is carved (`galaxy-lab challenge carve`): half of each class of its test split kept apart as the private
test set, the rest the dataset the class trains on. The teacher's base run (a preset) trains here first, then each
student's transfer run from it (a head of their own seed, trained here one after another: the class's runs, not
what is measured). Then every student submits their run at once, twice: with the service idle, and while a
teacher's training run takes the ordinary training slot. Prints, for each: the wall clock until all 30 are scored,
each submission's submit-to-score p50/p95, where a scoring run's time goes (waiting in the queue, its process
starting, its procedure: loading the private images and answering them 8 ways), and the scoring service's peak
memory (its supervisor and workers, summed). Then the shake-up: each student's public and private rank, how far
the public leader fell, and the paired test of the private first and second.

    .venv/bin/python benchmarks/bench_challenge.py [--students 30] [--data PATH] [--base-preset quick]

Compare the two rounds of one run of the script (this machine's speed varies from hour to hour).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from page_sessions import percentile

from galaxy_core.classroom.challenge import (
    ChallengeRules,
    carve_private_share,
    copy_challenge,
    scoring_root,
    set_up_challenge,
)
from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, User
from galaxy_core.classroom.submissions import challenge_board, my_submissions, submit_run
from galaxy_core.data import DatasetSpec
from galaxy_core.settings import load_settings
from galaxy_core.training import RunState, RunStore
from galaxy_core.training.client import ServiceClient, new_run, train_in_this_process
from galaxy_core.training.config import preset_config
from galaxy_core.training.kinds.transfer import transfer_config
from galaxy_core.training.service import ServiceFiles, end_supervisor

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"


def tree_rss_mb(root_pid: int) -> float:
    """The resident memory of a process and all its descendants, in MB (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    family, grew = {root_pid}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    total = 0
    for pid in family:
        try:
            rss = next(
                line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS")
            )
            total += int(rss.split()[1])
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


class PeakMemory(threading.Thread):
    """Samples the scoring service's memory (supervisor and workers) every 0.2 s."""

    def __init__(self, root: Path):
        super().__init__(daemon=True)
        self.files, self.peak, self.done = ServiceFiles(root), 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            pid = (self.files.status() or {}).get("pid")
            if isinstance(pid, int) and self.files.running():
                self.peak = max(self.peak, tree_rss_mb(pid))


def class_runs(settings, spec: DatasetSpec, preset: str, students: int):
    """The teacher's base and each student's transfer run from it, trained here (those of an earlier run of the
    script in the same --work folder are taken as they are)."""
    store = RunStore(settings.runs_dir)
    earlier = {s.owner_id: s.run for s in store.runs() if (s.owner_id or "").startswith("student-") and s.has_model}
    if len(earlier) >= students:
        print(f"the {students} students' runs of an earlier run of the script", flush=True)
        return {User(i, f"Student {i.split('-')[1]}", STUDENT): earlier[i] for i in sorted(earlier)[:students]}
    started = time.perf_counter()
    base = new_run(store, preset_config(spec, preset, seed=0), MACHINE_TEACHER)
    assert train_in_this_process(base) == "finished", base.summary().message
    print(f"base: {preset}, {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    runs = {}
    for number in range(1, students + 1):
        student = User(f"student-{number}", f"Student {number}", STUDENT)
        run = new_run(store, transfer_config(base.summary()), student)
        assert train_in_this_process(run) == "finished", run.summary().message
        runs[student] = run
    print(f"{students} students' transfer runs: {(time.perf_counter() - started) / 60:.1f} min in all", flush=True)
    return runs


def submit_all(settings, challenge, runs: dict) -> None:
    """Every student submits at once; returns when all are scored."""
    memory = PeakMemory(scoring_root(settings.runs_dir))
    memory.start()
    clicked = time.time()
    for student, run in runs.items():
        submit_run(settings, challenge.id, run.id, student)
    print(f"  {len(runs)} submissions in {time.time() - clicked:.1f} s", flush=True)
    while any(my_submissions(settings.runs_dir, challenge, s)[0].state in ("waiting", "scoring") for s in runs):
        time.sleep(0.5)
    memory.done.set()
    scoring = [
        summary
        for summary in RunStore(scoring_root(settings.runs_dir)).runs()
        if summary.options.get("challenge") == challenge.id
    ]
    failed = [s for s in scoring if s.state is not RunState.FINISHED]
    waits = [s.finished - s.created for s in scoring if s.finished and s.created]
    print(f"  all scored {max(s.finished for s in scoring) - clicked:.0f} s after the clicks; failed: {len(failed)}")
    print(f"  submit to score: p50 {percentile(waits, 0.5):.1f} s, p95 {percentile(waits, 0.95):.1f} s")
    queue = [s.dispatched - s.created for s in scoring if s.dispatched]
    start = [s.started - s.dispatched for s in scoring if s.started and s.dispatched]
    procedure = [s.finished - s.started for s in scoring if s.finished and s.started]
    print(
        f"  a scoring run: queue p50 {statistics.median(queue):.1f} s, process start {statistics.median(start):.1f} s, "
        f"procedure {statistics.median(procedure):.1f} s (p50); scoring service peak memory {memory.peak:.0f} MB"
    )


def shake_up(settings, challenge) -> None:
    entries, verdict = challenge_board(settings, challenge, MACHINE_TEACHER, show_names=True)
    leader = entries[0]
    print(f"public leader: {leader.chosen.submission.public:.3f} public, {leader.chosen.private:.3f} private, private "
          f"rank {leader.private_rank} of {len(entries)}")  # fmt: skip
    pairs = [(e.public_rank, e.private_rank) for e in entries if e.private_rank]
    n = len(pairs)
    spearman = 1 - 6 * sum((a - b) ** 2 for a, b in pairs) / (n * (n * n - 1))
    moved = statistics.mean(abs(a - b) for a, b in pairs)
    print(f"public against private rank: Spearman {spearman:.2f}, a student moves {moved:.1f} places on average")
    privates = [e.chosen.private for e in entries]
    print(f"private balanced accuracy {min(privates):.3f} to {max(privates):.3f}; first against second: "
          f"McNemar p = {verdict.p_value:.2f}" if verdict else "")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--base-preset", default="quick")
    parser.add_argument("--work", type=Path, help="a folder of an earlier run of the script: its carve and runs")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-challenge-"))
    public, private = work / "data" / "gz1-public", work / "private"
    if not public.exists():
        (work / "data").mkdir(parents=True)
        kept = carve_private_share(args.data, 0.5, public, private)
        print(f"carved in {work}: {kept[0]} public images, {kept[1]} private", flush=True)
    os.environ.update(GALAXY_LAB_RUNS_DIR=str(work / "runs"), GALAXY_LAB_DATA_ROOTS=str(work / "data"))
    settings = load_settings()
    spec = DatasetSpec.of("folder", path=str(public)).with_preprocess(crop_fraction=0.4)
    runs = class_runs(settings, spec, args.base_preset, args.students)
    challenge = set_up_challenge(
        settings.runs_dir,
        "Bench",
        spec,
        str(private),
        ChallengeRules(submissions_per_day=None),
        MACHINE_TEACHER,
        settings,
    )
    print("round 1: the service idle", flush=True)
    submit_all(settings, challenge, runs)
    print("round 2: while a teacher's training run takes the ordinary slot", flush=True)
    client = ServiceClient.from_settings(settings)
    training = client.submit(replace(preset_config(spec, args.base_preset, seed=1), epochs=30), MACHINE_TEACHER)
    while training.summary().state is RunState.QUEUED:
        time.sleep(0.5)
    second = copy_challenge(settings.runs_dir, challenge.id, "Bench again", MACHINE_TEACHER)
    submit_all(settings, second, runs)
    client.stop(training.id, MACHINE_TEACHER)
    shake_up(settings, challenge)
    end_supervisor(settings.runs_dir)
    end_supervisor(scoring_root(settings.runs_dir))


if __name__ == "__main__":
    main()
