"""A class at scale through the real scheduler: 30 students queue 2 runs each (and a teacher 1), and the training
service's supervisor starts them in fair-share order.

The supervisor, its run store and its fair-share choice are the lab's own (galaxy_core.training.supervisor); only
the training is a stand-in: an executor whose "runs" end after a fixed number of the supervisor's passes, so that
the order and the waits are measured in slot-turns, whatever the machine's speed. The runs are queued in the
least fair order there is: every student's two runs back to back, student after student.

Prints whether every student's first run started before any student's second, each student's wait (in runs started
before their first), and the old order's (oldest first) for comparison.

    .venv/bin/python benchmarks/bench_classroom.py [--students 30] [--slots 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from galaxy_core.people import MACHINE_TEACHER, STUDENT, User
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--slots", type=int, default=2, help="runs training at once (max_concurrent_runs)")
    args = parser.parse_args()
    order, owners = start_order(args.students, args.slots)
    print(f"{args.students} students x 2 runs, queued student after student, and 1 teacher's run; {args.slots} slots")
    report(order, owners, "fair share")
    report(list(owners), owners, "oldest first (the lab before)")  # the order they were queued in


if __name__ == "__main__":
    main()
