"""Issue #36's lesson through the pages (bench_lesson.py --pages): a real `galaxy-lab serve` in roster mode, the
teacher's base marked as the class's starting run, and every student a real Streamlit session (page_sessions.py):
signs in through the sign-in form, opens the Dataset page from the teacher's link, the Train page, presses
"Train from this run", watches the page until the run has ended, opens Evaluate on it, then the class board; the
teacher watches the board meanwhile. Then a second lesson in which `galaxy-lab serve --keep-training` is stopped
and started again once every student has pressed: each session reconnects with its cookie; runs, results and board
rows are counted before and after."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from page_sessions import PageSession, cpu_seconds, free_port, percentile, server_answers, sign_in

from galaxy_core.classroom.board import class_board
from galaxy_core.classroom.lesson import set_lesson_base
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.classroom.roster import TEACHER_NAME, Roster
from galaxy_core.data import spec_to_link
from galaxy_core.training import RunStore

TRAIN_FROM_RUN = "train_from_run"  # the key of the Train page's button (pages/ui/kinds/transfer.py)
NEW_RUN = "train_new_run"  # the key of its New run expander (pages/train.py)


class LabServer:
    """`galaxy-lab serve --keep-training` on a port of this machine, in roster mode, started and stopped by pid."""

    def __init__(self, work: Path, env: dict) -> None:
        self.work, self.env, self.process, self.port = work, env, None, free_port()

    def start(self) -> float:
        """Start it; returns the seconds until it answered."""
        started = time.monotonic()
        command = [sys.executable, "-m", "galaxy_core.cli", "serve", "--headless", "--keep-training"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=self.work,
            env=self.env,
            stdout=(self.work / "server.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while not server_answers(self.port):
            if self.process.poll() is not None or time.monotonic() - started > 180:
                raise SystemExit(f"error: the server did not start: see {self.work / 'server.log'}")
            time.sleep(0.3)
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)  # serve passes it on to Streamlit, then leaves the runs training
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def streamlit_pid(self) -> int:
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return next(int(pid) for pid in children.split() if b"streamlit" in Path(f"/proc/{pid}/cmdline").read_bytes())


def peak_memory_mb(pid: int) -> float:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


class RunsSeen:
    """The runs folder as the bench sees it, read once a second for every session at once."""

    def __init__(self, store: RunStore) -> None:
        self.store, self.summaries = store, []

    async def follow(self) -> None:
        while True:
            self.summaries = await asyncio.to_thread(self.store.runs)
            await asyncio.sleep(1)

    def of(self, name: str, since: float):
        """`name`'s run queued at `since` or later (None before it exists)."""
        return next((s for s in self.summaries if s.owner_name == name and s.created >= since - 1), None)

    def ended(self, name: str, since: float) -> bool:
        run = self.of(name, since)
        return run is not None and not run.state.active


class Student:
    def __init__(self, name: str, code: str, link: str) -> None:
        self.name, self.code, self.query = name, code, f"dataset={quote(link)}"
        self.cookie, self.session, self.clicked, self.problems = "", None, 0.0, []

    async def sign_in_and_press(self, port: int) -> None:
        """Sign in, the Dataset page from the teacher's link, the Train page, and "Train from this run"."""
        self.cookie = await asyncio.to_thread(sign_in, port, self.name, self.code)
        await self.open_train(port, dataset_first=True)
        self.clicked = time.time()
        await self.session.open("train", pressed=TRAIN_FROM_RUN)

    async def open_train(self, port: int, dataset_first: bool = False) -> None:
        self.session = PageSession(port, self.cookie, self.query)
        await self.session.connect()
        if dataset_first:
            await self.session.open("dataset")
        await self.session.open("train")
        if TRAIN_FROM_RUN not in self.session.widgets and NEW_RUN in self.session.widgets:
            await self.session.open("train", expanded=NEW_RUN)  # folded away once the student has a run
        if f"{self.name} (student)" not in self.session.texts:
            self.problems.append("the Train page did not say who is signed in")
        if TRAIN_FROM_RUN not in self.session.widgets:
            self.problems.append("the Train page had no Train from this run button")

    async def watch_then_look(self, seen: RunsSeen) -> None:
        """Watch the Train page until the run has ended, then Evaluate on it and the class board."""
        if not await self.session.watch(lambda: seen.ended(self.name, self.clicked), timeout=900):
            self.problems.append("the run did not end within 15 minutes")
            return
        run = seen.of(self.name, self.clicked)
        await self.session.open("evaluate", query=f"evaluate_run={run.id}&{self.query}")
        if f"evaluate_run={run.id}" not in self.session.query:  # the run the page chose, in the URL it wrote
            self.problems.append(f"Evaluate did not open run {run.id}")
        await self.session.open("board")
        await self.session.close()


async def teacher_watches(port: int, secret: str, done) -> PageSession:
    session = PageSession(port, await asyncio.to_thread(sign_in, port, TEACHER_NAME, secret))
    await session.connect()
    await session.open("board")
    await session.watch(done, timeout=1800)
    await session.close()
    return session


async def teacher_opens_the_dataset(port: int, secret: str, link: str) -> float:
    """Before the class, as a teacher would: the Dataset page from the link (the server reads the images once)."""
    session = PageSession(port, await asyncio.to_thread(sign_in, port, TEACHER_NAME, secret), f"dataset={quote(link)}")
    await session.connect()
    seconds = await session.open("dataset")
    await session.close()
    return seconds


def counts(store: RunStore) -> tuple[int, int, int]:
    """(runs, runs with test results, rows of the class board with every name shown)."""
    summaries = store.runs()
    rows = class_board(summaries, MACHINE_TEACHER, show_names=True)
    return len(summaries), sum(s.has_test_results for s in summaries), len(rows)


def report(label: str, students: list[Student], seen: RunsSeen, teacher: PageSession, server: dict) -> None:
    runs = [seen.of(student.name, student.clicked) for student in students]
    pairs = zip(runs, students, strict=True)
    waits = [run.finished - student.clicked for run, student in pairs if run and run.finished]
    first = min(student.clicked for student in students)
    responses = [response for student in students for response in student.session.responses] + teacher.responses
    pages = [seconds for _, seconds in responses]
    problems = [f"{s.name}: {p}" for s in students for p in s.problems]
    problems += [f"{s.name}: {e}" for s in students for e in s.session.exceptions] + teacher.exceptions
    problems += [f"{run.id}: {run.message}" for run in runs if run and run.state.value != "finished"]
    print(f"\n{label}: {len(students)} students through the pages")
    if waits:
        last = max(run.finished for run in runs if run and run.finished)
        print(f"  all {len(waits)} results {last - first:.0f} s after the first click (goal <= 120 s)")
        p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
        print(f"  click to result p50 {p50:.0f} s, p95 {p95:.0f} s (goal p95 <= 60 s)")
    print(
        f"  page responses: p50 {percentile(pages, 0.5):.2f} s, p95 {percentile(pages, 0.95):.2f} s, max "
        f"{max(pages):.2f} s over {len(pages)} pages (goal p95 <= 2 s)"
    )
    for page in sorted({page for page, _ in responses}):
        times = [seconds for name, seconds in responses if name == page]
        print(f"    {page}: p50 {percentile(times, 0.5):.2f} s, p95 {percentile(times, 0.95):.2f} s ({len(times)})")
    print(f"  the server (Streamlit): {server['cores']:.2f} cores over the lesson, peak memory {server['peak']:.0f} MB")
    figures = [run.test_balanced_accuracy for run in runs if run and run.test_balanced_accuracy is not None]
    if figures:
        seeds = len({run.seed for run in runs if run})
        print(f"  test balanced accuracy {min(figures):.3f} to {max(figures):.3f}, {seeds} seeds")
    print(f"  errors: {len(problems)}" + "".join(f"\n    {problem}" for problem in problems[:10]))


async def lesson(server: LabServer, codes: dict, secret: str, link: str, store: RunStore, restart: bool) -> None:
    seen = RunsSeen(store)
    following = asyncio.create_task(seen.follow())
    students = [Student(name, code, link) for name, code in codes.items()]
    streamlit, began = server.streamlit_pid(), time.monotonic()
    cpu, used = cpu_seconds(streamlit), 0.0
    everyone_done = lambda: all(s.clicked and seen.ended(s.name, s.clicked) for s in students)  # noqa: E731
    teacher = asyncio.create_task(teacher_watches(server.port, secret, everyone_done))
    await asyncio.gather(*(student.sign_in_and_press(server.port) for student in students))
    print(f"  {len(students)} signed in and pressed within {time.time() - min(s.clicked for s in students):.1f} s")
    if restart:
        used += cpu_seconds(streamlit) - cpu
        for student in students:
            await student.session.close()
        before = await asyncio.to_thread(counts, store)
        stopped = time.monotonic()
        await asyncio.to_thread(server.stop)
        teacher.cancel()
        restarted = await asyncio.to_thread(server.start)
        print(
            f"  serve stopped and started again: the lab answered {time.monotonic() - stopped:.1f} s after the stop "
            f"began ({restarted:.1f} s to start); runs, results, board rows before the stop: {before}"
        )
        streamlit = server.streamlit_pid()
        cpu = cpu_seconds(streamlit)
        teacher = asyncio.create_task(teacher_watches(server.port, secret, everyone_done))
        await asyncio.gather(*(student.open_train(server.port) for student in students))  # their cookies, again
        signed_in = sum(f"{student.name} (student)" in student.session.texts for student in students)
        print(f"  after the restart, {signed_in} of {len(students)} sessions were signed in with the same cookie")
    await asyncio.gather(*(student.watch_then_look(seen) for student in students))
    watching = await teacher
    following.cancel()
    used += cpu_seconds(streamlit) - cpu
    server_use = {"cores": used / (time.monotonic() - began), "peak": peak_memory_mb(streamlit)}
    report("the lesson" + (" with a restart" if restart else ""), students, seen, watching, server_use)
    if restart:
        after = counts(store)
        print(f"  runs, results, board rows once every run had ended: {after} (before the stop {before})")


def lesson_through_pages(work: Path, students: int, base, spec, data: Path) -> None:
    """Both lessons on a server serving `work` (its runs folder holds the teacher's `base`)."""
    store = RunStore(work / "runs")
    set_lesson_base(store, base.id, MACHINE_TEACHER)
    roster = Roster(store.root)
    codes = {}
    for number in range(1, students + 1):
        name = f"Student {number}"
        codes[name] = roster.new_code(name) if name in roster.students() else roster.add(name)
    secret = roster.new_teacher_secret()
    (work / "galaxy-lab.toml").write_text(f'auth = "roster"\ndata_roots = ["{data.resolve().parent}"]\n')
    env = {**os.environ, "GALAXY_LAB_SETTINGS": str(work / "galaxy-lab.toml"), "GALAXY_LAB_RUNS_DIR": str(store.root)}
    server = LabServer(work, env)
    print(f"serve started in {server.start():.1f} s on port {server.port}", flush=True)
    try:
        seconds = asyncio.run(teacher_opens_the_dataset(server.port, secret, spec_to_link(spec)))
        print(f"the teacher opened the Dataset page from the class's link before the lesson: {seconds:.1f} s")
        asyncio.run(lesson(server, codes, secret, spec_to_link(spec), store, restart=False))
        asyncio.run(lesson(server, codes, secret, spec_to_link(spec), store, restart=True))
    finally:
        server.stop()
