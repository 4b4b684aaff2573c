"""`galaxy-lab roster`: the class's roster for auth = "roster" (galaxy_core.roster), on the server's machine."""

from __future__ import annotations

import sys

from galaxy_core.cli.common import RUNS_DIR
from galaxy_core.roster import TEACHER_NAME, Roster

ACTIONS = {
    "list": "the students on the roster (their codes are not kept, only their hashes)",
    "add": "add students by name, and print the code each signs in with (shown once)",
    "new-code": "give students a new code (the old one and its sign-ins stop working)",
    "remove": "take students off the roster (their sign-ins stop working; their runs stay theirs)",
    "teacher": f"make a new teacher secret (sign in with the name {TEACHER_NAME!r}) and print it once",
}


def roster_command(commands) -> None:
    parser = commands.add_parser(
        "roster",
        parents=[RUNS_DIR],
        help="the students who sign in with a code, and the teacher's secret (auth = roster)",
        description="; ".join(f"{action}: {what}" for action, what in ACTIONS.items())
        + ". The roster is kept in the runs folder's .class/ folder.",
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("names", nargs="*", metavar="NAME", help="students' names (add, new-code, remove)")
    parser.set_defaults(run=_roster)


def _roster(args, settings) -> int:
    roster = Roster(args.runs_dir or settings.runs_dir)
    if args.action == "list":
        names = roster.students()
        print("\n".join(names) if names else "(no students yet: galaxy-lab roster add NAME ...)")
        print(f"teacher secret: {'set' if roster.has_teacher_secret() else 'none yet (galaxy-lab roster teacher)'}")
        return 0
    if args.action == "teacher":
        print(f"{TEACHER_NAME}\t{roster.new_teacher_secret()}")
        return 0
    if not args.names:
        print(f"error: roster {args.action} needs students' names", file=sys.stderr)
        return 2
    for name in args.names:
        if args.action == "remove":
            roster.remove(name)
            print(f"{name}: removed")
        else:
            code = roster.add(name) if args.action == "add" else roster.new_code(name)
            print(f"{name}\t{code}")
    return 0
