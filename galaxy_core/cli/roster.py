"""`galaxy-lab roster`: the class list for auth = "roster" (galaxy_core.classroom.roster), on the server's machine."""

from __future__ import annotations

import sys

from galaxy_core.classroom.people import user_key
from galaxy_core.classroom.roster import TEACHER_NAME, Roster
from galaxy_core.classroom.sessions import Sessions
from galaxy_core.classroom.throttle import SignInThrottle
from galaxy_core.cli.common import RUNS_DIR

ACTIONS = {
    "list": "the students on the roster (their codes are not kept, only their hashes)",
    "add": "add students by name, and print the code each signs in with (shown once)",
    "new-code": "give students a new code (the old one and its sign-ins stop working; wrong codes tried are forgotten)",
    "remove": "take students off the roster (their sign-ins stop working; their runs stay theirs)",
    "teacher": f"make a new teacher secret (sign in with the name {TEACHER_NAME!r}) and print it once",
    "unlock": "forget the wrong codes tried for these names (all names: none given), so nobody waits to sign in",
    "sign-out": f"end every session of these people (students' names, or {TEACHER_NAME!r})",
}
NEEDS_NAMES = ("add", "new-code", "remove", "sign-out")


def roster_command(commands) -> None:
    parser = commands.add_parser(
        "roster",
        parents=[RUNS_DIR],
        help="the students who sign in with a code, and the teacher's secret (auth = roster)",
        description="; ".join(f"{action}: {what}" for action, what in ACTIONS.items())
        + ". The roster is kept in the runs folder's .class/ folder.",
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("names", nargs="*", metavar="NAME", help="names (add, new-code, remove, unlock, sign-out)")
    parser.set_defaults(run=_roster)


def _roster(args, settings) -> int:
    runs_dir = args.runs_dir or settings.runs_dir
    roster = Roster(runs_dir)
    if args.action == "list":
        names = roster.students()
        print("\n".join(names) if names else "(no students yet: galaxy-lab roster add NAME ...)")
        print(f"teacher secret: {'set' if roster.has_teacher_secret() else 'none yet (galaxy-lab roster teacher)'}")
        return 0
    if args.action == "teacher":
        print(f"{TEACHER_NAME}\t{roster.new_teacher_secret()}")
        return 0
    if args.action == "unlock" and not args.names:
        print(f"forgot {SignInThrottle(runs_dir).unlock()} wrong code(s) for every name")
        return 0
    if args.action in NEEDS_NAMES and not args.names:
        print(f"error: roster {args.action} needs names", file=sys.stderr)
        return 2
    for name in args.names:
        print(_change(roster, runs_dir, args.action, name))
    return 0


def _change(roster: Roster, runs_dir, action: str, name: str) -> str:
    """One name's change; the line that says what was done."""
    if action == "remove":
        roster.remove(name)
        return f"{name}: removed"
    if action == "unlock":
        return f"{name}: forgot {SignInThrottle(runs_dir).unlock(user_key(name))} wrong code(s)"
    if action == "sign-out":
        return f"{name}: ended {Sessions(runs_dir).end_all(user_key(name))} session(s)"
    code = roster.add(name) if action == "add" else roster.new_code(name)
    return f"{name}\t{code}"
