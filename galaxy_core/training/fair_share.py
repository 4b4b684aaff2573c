"""Which queued runs start next: a fair share of the training slots between the people of a class.

A teacher's runs go first (a demonstration waits for no one). Among the others, the run whose owner has started
the fewest runs in the last hour goes first, the oldest run first between equals; a student already training
`max_per_student` runs waits for one of them to end. On one machine and on a Ray cluster alike: the supervisor
asks this whatever its executor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.training.lifecycle import RunState
from galaxy_core.training.records import RunSummary

WINDOW_SECONDS = 3600.0


def owner_of(summary: RunSummary) -> str:
    return summary.owner_id or MACHINE_TEACHER.id


def starts_of(summaries: Iterable[RunSummary]) -> list[tuple[str, float]]:
    """(owner, when) of every run that was started (handed to an executor)."""
    return [(owner_of(s), s.dispatched) for s in summaries if s.dispatched is not None]


def recent_starts(starts: Iterable[tuple[str, float]], now: float, window: float = WINDOW_SECONDS) -> Counter:
    """How many runs each owner has had started in the last `window` seconds."""
    return Counter(owner for owner, when in starts if now - when < window)


def queue_positions(summaries: list[RunSummary], now: float) -> dict[str, int]:
    """{queued run's id: its place in the queue, from 1}: the order the fair share would start them in were slots
    to free up one after another (each run ahead of it then training)."""
    queued = [summary for summary in summaries if summary.state is RunState.QUEUED]
    running = [summary for summary in summaries if summary.state is RunState.RUNNING]
    started = recent_starts(starts_of(summaries), now)
    order = next_to_start(queued, running, started, len(queued), max_per_student=len(queued) + len(running) + 1)
    return {summary.id: place for place, summary in enumerate(order, start=1)}


def next_to_start(
    queued: list[RunSummary], running: list[RunSummary], started: Counter, free: int, max_per_student: int
) -> list[RunSummary]:
    """Up to `free` of the queued runs, in the order they should start."""
    training, started, chosen = Counter(owner_of(s) for s in running), Counter(started), []
    waiting = list(queued)
    while len(chosen) < free:
        eligible = [s for s in waiting if s.owner_is_teacher or training[owner_of(s)] < max_per_student]
        if not eligible:
            break
        best = min(eligible, key=lambda s: (not s.owner_is_teacher, started[owner_of(s)], s.created or 0.0, s.id))
        chosen.append(best)
        waiting.remove(best)
        training[owner_of(best)] += 1
        started[owner_of(best)] += 1
    return chosen
