"""Who is who and who may do what: the roster and its sessions, the authorization matrix through the library, the
per-student limits and the fair share of the training slots."""

import json
import shutil
import time
from collections import Counter

import pytest

from galaxy_core.classroom.access import NotAllowedError
from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, TEACHER, User
from galaxy_core.classroom.roster import Roster, RosterError
from galaxy_core.classroom.sessions import SESSION_SECONDS, Sessions
from galaxy_core.training import RunState, RunStore
from galaxy_core.training.client import QueueFullError, ServiceClient, new_run
from galaxy_core.training.fair_share import next_to_start
from tests.helpers import give_run, rewrite_status, tiny_config

ADA, BOB = User("ada", "Ada", STUDENT), User("bob", "Bob", STUDENT)
MS_LEE = User("lee@school.org", "Ms Lee", TEACHER)


def test_a_roster_keeps_hashes_and_a_code_signs_its_student_in(isolated_settings):
    roster = Roster(isolated_settings["runs"])
    code = roster.add("Ada Lovelace")
    stored = roster.path.read_text()
    assert code not in stored and code.replace("-", "") not in stored  # only a salted hash
    assert oct(roster.path.stat().st_mode & 0o777) == "0o600"
    assert roster.sign_in("ada  LOVELACE", code) == User("ada lovelace", "Ada Lovelace", STUDENT)
    assert roster.sign_in("Ada Lovelace", code.upper().replace("-", " ")) is not None  # as a student types it
    wrong = code[:-1] + ("y" if code[-1] == "x" else "x")  # one character off (a code may end in "x" itself)
    assert roster.sign_in("Ada Lovelace", wrong) is None
    assert roster.sign_in("Someone", code) is None
    assert roster.sign_in("teacher", code) is None  # no teacher secret yet
    with pytest.raises(RosterError, match="already on the roster"):
        roster.add("ada lovelace")
    with pytest.raises(ValueError, match="'teacher' is the teacher's name"):
        roster.add("Teacher")
    secret = roster.new_teacher_secret()
    assert roster.sign_in("teacher", secret).is_teacher
    assert roster.students() == ["Ada Lovelace"]


def test_a_session_lives_on_the_server_and_ends_there(isolated_settings):
    roster, sessions = Roster(isolated_settings["runs"]), Sessions(isolated_settings["runs"])
    code = roster.add("Ada")
    ada = roster.sign_in("Ada", code)
    token = sessions.start(ada)
    assert sessions.user(token) == ada
    stored = "".join(path.read_text() for path in sessions.folder.iterdir())
    assert token not in stored  # the folder holds no token a reader could use
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "", "a.b.c", None, token + "x", "../" * 20):
        assert sessions.user(bad) is None, bad
    assert sessions.user(token, now=time.time() + SESSION_SECONDS + 1) is None  # expired
    copy = str(token)
    sessions.end(token)  # Sign out: a copy of the cookie stops working with it
    assert sessions.user(copy) is None
    phone, laptop, bob = sessions.start(ada), sessions.start(ada), sessions.start(User("bob", "Bob", STUDENT))
    assert sessions.end_all("ada") == 2  # galaxy-lab roster sign-out Ada
    assert sessions.user(phone) is None and sessions.user(laptop) is None
    assert sessions.user(bob) is None  # Bob is on no roster
    fresh = sessions.start(ada)
    roster.new_code("Ada")  # a new code ends the sessions of the old one
    assert sessions.user(fresh) is None
    fresh = sessions.start(ada)
    roster.remove("Ada")
    assert sessions.user(fresh) is None


def test_an_expired_session_file_goes_when_a_new_one_starts(isolated_settings):
    roster, sessions = Roster(isolated_settings["runs"]), Sessions(isolated_settings["runs"])
    ada = roster.sign_in("Ada", roster.add("Ada"))
    sessions.start(ada, now=time.time() - SESSION_SECONDS - 1)
    assert len(list(sessions.folder.iterdir())) == 1
    sessions.start(ada)
    assert len(list(sessions.folder.iterdir())) == 1


ACTIONS = {
    "stop": lambda client, run_id, user: client.stop(run_id, user),
    "rename": lambda client, run_id, user: client.rename(run_id, "# mine <b>now</b>", user),
    "delete": lambda client, run_id, user: client.delete(run_id, user),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    ("who", "allowed"), [(ADA, True), (BOB, False), (MS_LEE, True), (MACHINE_TEACHER, True)], ids=str
)
def test_a_run_is_changed_by_its_owner_or_a_teacher_only(
    isolated_settings, queue_that_never_starts, action, who, allowed
):
    client = ServiceClient(isolated_settings["runs"])
    run = client.submit(tiny_config(), ADA)
    if allowed:
        ACTIONS[action](client, run.id, who)
    else:
        with pytest.raises(NotAllowedError, match=f"Bob may not {action} run .*: it is Ada's, and only its owner"):
            ACTIONS[action](client, run.id, who)
    unchanged = not allowed
    if action == "delete":
        assert (run.id in client.store.run_ids()) == unchanged
    elif action == "stop":
        assert (run.state() is RunState.QUEUED) == unchanged
    else:
        assert (run.title() == "") == unchanged
        if allowed:  # what someone typed is kept as text: shown escaped, never as Markdown or HTML
            assert run.title() == "# mine <b>now</b>"


def test_the_trash_keeps_a_deleted_run_until_a_teacher_empties_it(isolated_settings, queue_that_never_starts):
    client = ServiceClient(isolated_settings["runs"])
    ada_run, bob_run = client.submit(tiny_config(), ADA), client.submit(tiny_config(seed=1), BOB)
    client.delete(ada_run.id, ADA)
    client.delete(bob_run.id, MS_LEE)
    assert client.store.runs() == []  # gone from every list and menu
    assert [s.id for s in client.trashed(ADA)] == [ada_run.id]  # a student sees their own
    assert {s.id for s in client.trashed(MS_LEE)} == {ada_run.id, bob_run.id}
    with pytest.raises(NotAllowedError, match="Ada may not restore"):
        client.restore(bob_run.id, ADA)
    restored = client.restore(ada_run.id, ADA)
    assert restored.summary().state is RunState.STOPPED and "deleted by Ada" in restored.summary().message
    with pytest.raises(NotAllowedError, match="only a teacher may empty the trash; Ada is a student"):
        client.empty_trash(ADA)
    assert client.empty_trash(MS_LEE) == 1
    assert not client.store.trash_dir.joinpath(bob_run.id).exists()
    assert [s.id for s in client.store.runs()] == [ada_run.id]


def test_a_forged_run_id_is_refused(isolated_settings, queue_that_never_starts):
    client = ServiceClient(isolated_settings["runs"])
    client.submit(tiny_config(), ADA)
    for forged in ("../.class", ".trash", "../../etc", ".class/roster.json"):
        with pytest.raises(LookupError):
            client.delete(forged, MS_LEE)


def test_a_student_may_keep_only_so_many_runs_waiting(isolated_settings, queue_that_never_starts):
    client = ServiceClient(isolated_settings["runs"], max_waiting_per_student=2, max_queued=10)
    client.submit(tiny_config(), ADA)
    client.submit(tiny_config(seed=1), ADA)
    with pytest.raises(QueueFullError, match="you have 2 runs waiting for a training slot, the most a student may"):
        client.submit(tiny_config(seed=2), ADA)
    client.submit(tiny_config(seed=2), BOB)  # another student's own share
    for seed in range(3):
        client.submit(tiny_config(seed=seed), MS_LEE)  # a teacher's runs count only toward the queue's limit
    assert Counter(s.owner_name for s in client.store.runs()) == {"Ada": 2, "Bob": 1, "Ms Lee": 3}


def test_a_class_of_31_pressing_train_at_once_under_the_default_limits_is_never_refused(
    isolated_settings, queue_that_never_starts
):
    from concurrent.futures import ThreadPoolExecutor

    from galaxy_core.settings import load_settings

    client = ServiceClient.from_settings(load_settings())  # the shipped defaults
    students = [User(f"student-{number}", f"Student {number}", STUDENT) for number in range(31)]
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda student: client.submit(tiny_config(), student), students))
    assert len({run.id for run in runs}) == 31
    assert Counter(s.owner_name for s in client.store.runs()) == {student.name: 1 for student in students}
    for student in students[:9]:  # each a second run, as the per-student limit allows: still room
        client.submit(tiny_config(), student)
    assert len(client.store.runs()) == 40


def test_a_student_may_keep_only_so_much_on_disk(isolated_settings, finished_run, queue_that_never_starts):
    folder_bytes = sum(path.stat().st_size for path in finished_run.path.rglob("*") if path.is_file())  # du, by hand
    copies = 2**20 // folder_bytes + 1  # just over 1 MB together; one fewer, under it
    assert (copies - 1) * folder_bytes < 2**20 <= copies * folder_bytes
    runs = [finished_run]
    for number in range(1, copies):
        shutil.copytree(finished_run.path, finished_run.path.with_name(f"{finished_run.id}-{number}"))
        runs.append(RunStore(isolated_settings["runs"]).get(f"{finished_run.id}-{number}"))
    for run in runs:
        give_run(run, ADA)
    client = ServiceClient(isolated_settings["runs"], disk_mb_per_student=1)
    with pytest.raises(QueueFullError, match=r"your runs take 1 MB on disk, the most a student may keep is 1 MB"):
        client.submit(tiny_config(), ADA)
    client.submit(tiny_config(), BOB)  # Bob's own budget
    client.submit(tiny_config(), MS_LEE)  # a teacher's runs are not counted
    client.delete(runs[0].id, ADA)  # the trash does not count: Ada may queue again
    assert client.submit(tiny_config(), ADA).summary().owner_name == "Ada"


def queued_runs(store: RunStore, owners: list[User]) -> list:
    summaries = []
    for number, owner in enumerate(owners):
        run = new_run(store, tiny_config(seed=number), owner)
        config = json.loads((run.path / "config.json").read_text())
        (run.path / "config.json").write_text(json.dumps({**config, "created": 1000.0 + number}))
        summaries.append(run.summary())
    return summaries


def test_the_fair_share_order(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    a1, a2, a3, b1, c1, lee = queued_runs(store, [ADA, ADA, ADA, BOB, User("cy", "Cy", STUDENT), MS_LEE])
    queued = [a1, a2, a3, b1, c1, lee]
    names = lambda runs: [s.id for s in runs]  # noqa: E731
    # The teacher first; then one run of each student, oldest first; then the students' second runs.
    assert names(next_to_start(queued, [], Counter(), 6, max_per_student=5)) == names([lee, a1, b1, c1, a2, a3])
    # Ada has started two runs lately: Bob and Cy go before her.
    assert names(next_to_start(queued, [], Counter(ada=2), 4, max_per_student=5)) == names([lee, b1, c1, a1])
    # One run at a time per student: Ada, training one, waits; the others do not.
    rewrite_status(a1.run, "running")
    running = [a1.run.summary()]
    assert names(next_to_start([a2, a3, b1, c1], running, Counter(), 4, max_per_student=1)) == names([b1, c1])
