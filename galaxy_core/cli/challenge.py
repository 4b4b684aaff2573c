"""`galaxy-lab challenge`: a class challenge with a private test set (galaxy_core.classroom.challenge), from the
server's machine, as its teacher: set one up, follow its submissions with their private figures, reveal, close,
reopen or copy it, and write the grade book."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from galaxy_core.classroom.challenge import (
    ChallengeRules,
    carve_private_share,
    change_challenge,
    copy_challenge,
    list_challenges,
    load_challenge,
    set_up_challenge,
    submissions_left,
    submissions_of,
)
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.classroom.submissions import challenge_board, grade_book_csv, submit_run
from galaxy_core.cli.common import RUNS_DIR, add_dataset_arguments, dataset_spec_from_args, interval_words
from galaxy_core.errors import InvalidInputError

CHANGES = {"reveal": {"revealed": True}, "close": {"closed": True}, "reopen": {"closed": False}}


def challenge_command(commands) -> None:
    parser = commands.add_parser(
        "challenge",
        help="a class challenge scored on a private test set: carve, new, list, board, submit, reveal, close, "
        "reopen, copy, grades",
        description="A challenge has a dataset the class trains on, a private test folder (class folders, outside "
        "every data root) that only the teacher sees, rules and a deadline. Students submit finished runs from the "
        "Challenge page; each is scored on the private images in the training service. Kept in the runs folder's "
        ".class/challenges/.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", parents=[RUNS_DIR], help="set up a challenge and print its id")
    new.add_argument("title")
    add_dataset_arguments(new, positional=False)
    new.add_argument("--private", required=True, help="the private test folder: class folders, outside the data roots")
    new.add_argument("--max-parameters", type=int, help="the most parameters a submitted network may have")
    new.add_argument("--max-epochs", type=int, help="the most epochs a submitted run may have trained")
    new.add_argument("--max-minutes", type=float, help="the most minutes a submitted run may have trained")
    new.add_argument("--per-day", type=int, default=3, help="submissions a student may make in any 24 hours (3)")
    new.add_argument("--in-all", type=int, default=10, help="submissions a student may make in all (10)")
    new.add_argument("--deadline", help="when submissions close, e.g. 2027-03-01T17:00 (the server's local time)")
    new.add_argument("--reveal-at-deadline", action="store_true", help="show the private figures at the deadline")
    new.set_defaults(run=_new)
    actions.add_parser("list", parents=[RUNS_DIR], help="the challenges, newest first").set_defaults(run=_list)
    carve = actions.add_parser(
        "carve",
        help="make a public dataset folder and a private test folder from a folder dataset (images linked)",
        description="Keeps a share of each class of SOURCE's test split (of its class folders, without split "
        "folders) apart in PRIVATE, and every other image in PUBLIC, as links. Put PUBLIC in a data root, and keep "
        "PRIVATE and SOURCE outside every data root.",
    )
    carve.add_argument("source", type=Path, metavar="SOURCE")
    carve.add_argument("--public", type=Path, required=True, help="the new folder the class trains on")
    carve.add_argument("--private", type=Path, required=True, help="the new private test folder")
    carve.add_argument("--share", type=float, default=0.5, help="the share of the test split kept apart (0.5)")
    carve.add_argument("--seed", type=int, default=0, help="which images are kept apart (0)")
    carve.set_defaults(run=_carve)
    for name, what in [("board", "every student's best public submission with its private figure"),
                       ("reveal", "show the private figures to the class"), ("close", "take no more submissions"),
                       ("reopen", "take submissions again")]:  # fmt: skip
        action = actions.add_parser(name, parents=[RUNS_DIR], help=what)
        action.add_argument("challenge_id", metavar="CHALLENGE")
        action.set_defaults(run=_board if name == "board" else _change)
    submit = actions.add_parser("submit", parents=[RUNS_DIR], help="submit a run of the teacher's (a baseline)")
    submit.add_argument("challenge_id", metavar="CHALLENGE")
    submit.add_argument("run_id", metavar="RUN")
    submit.set_defaults(run=_submit)
    copy = actions.add_parser("copy", parents=[RUNS_DIR], help="a new challenge with the same data and rules")
    copy.add_argument("challenge_id", metavar="CHALLENGE")
    copy.add_argument("title")
    copy.add_argument("--deadline", help="the copy's deadline (the old one's is not kept)")
    copy.set_defaults(run=_copy)
    grades = actions.add_parser("grades", parents=[RUNS_DIR], help="the grade book as CSV, one row per student")
    grades.add_argument("challenge_id", metavar="CHALLENGE")
    grades.add_argument("--out", type=Path, help="write it to this file (default: print it)")
    grades.set_defaults(run=_grades)


def _settings(args, settings):
    return replace(settings, runs_dir=args.runs_dir) if args.runs_dir else settings


def parse_deadline(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidInputError(f"the deadline {text!r} is not a time like 2027-03-01T17:00") from None


def _new(args, settings) -> int:
    settings = _settings(args, settings)
    rules = ChallengeRules(
        max_parameters=args.max_parameters,
        max_epochs=args.max_epochs,
        max_training_minutes=args.max_minutes,
        submissions_per_day=args.per_day,
        submissions_in_all=args.in_all,
        deadline=parse_deadline(args.deadline),
        reveal_at_deadline=args.reveal_at_deadline,
    )
    spec = dataset_spec_from_args(args, settings)
    made = set_up_challenge(settings.runs_dir, args.title, spec, args.private, rules, MACHINE_TEACHER, settings)
    print(f"challenge {made.title!r}: {made.private_images} private images of {', '.join(made.class_names)}")
    print(made.id)
    return 0


def _carve(args, settings) -> int:
    public, private = carve_private_share(args.source, args.share, args.public, args.private, args.seed)
    print(f"{public} images in {args.public}, {private} kept apart in {args.private}")
    return 0


def _list(args, settings) -> int:
    made = list_challenges(_settings(args, settings).runs_dir)
    for challenge in made:
        state = "closed" if challenge.closed else "open"
        shown = ", private figures revealed" if challenge.revealed else ""
        print(f"{challenge.id}\t{challenge.title}\t{state}{shown}")
    if not made:
        print("(no challenge yet: galaxy-lab challenge new TITLE --dataset D --private FOLDER)")
    return 0


def _board(args, settings) -> int:
    settings = _settings(args, settings)
    challenge = load_challenge(settings.runs_dir, args.challenge_id)
    entries, verdict = challenge_board(settings, challenge, MACHINE_TEACHER, show_names=True)
    print("public rank\tprivate rank\tstudent\tsubmissions\tpublic\tprivate\tscoring")
    for entry in entries:
        view = entry.chosen
        private = "" if view.private is None else f"{view.private:.4f}{interval_words(view.private_interval)}"
        public = "" if view.submission.public is None else f"{view.submission.public:.4f}"
        print(f"{entry.public_rank}\t{entry.private_rank or ''}\t{entry.name}\t{entry.submissions}\t{public}\t"
              f"{private}\t{view.state}{': ' + view.why if view.why else ''}")  # fmt: skip
    if verdict is not None:
        print(f"private first against second: McNemar p = {verdict.p_value:.3g}")
    return 0


def _change(args, settings) -> int:
    runs_dir = _settings(args, settings).runs_dir
    challenge = change_challenge(runs_dir, args.challenge_id, MACHINE_TEACHER, **CHANGES[args.action])
    print(f"challenge {challenge.title!r}: {'closed' if challenge.closed else 'open'}"
          f"{', private figures revealed' if challenge.revealed else ''}")  # fmt: skip
    return 0


def _submit(args, settings) -> int:
    settings = _settings(args, settings)
    submission = submit_run(settings, args.challenge_id, args.run_id, MACHINE_TEACHER)
    challenge = load_challenge(settings.runs_dir, args.challenge_id)
    mine = [s for s in submissions_of(settings.runs_dir, challenge.id) if s.student_id == MACHINE_TEACHER.id]
    left, _ = submissions_left(challenge, mine, submission.submitted)
    print(f"submission {submission.number}: run {submission.run_name}, scoring queued"
          f"{'' if left is None else f'; {left} left'}")  # fmt: skip
    return 0


def _copy(args, settings) -> int:
    runs_dir = _settings(args, settings).runs_dir
    made = copy_challenge(runs_dir, args.challenge_id, args.title, MACHINE_TEACHER, parse_deadline(args.deadline))
    print(made.id)
    return 0


def _grades(args, settings) -> int:
    settings = _settings(args, settings)
    text = grade_book_csv(settings, load_challenge(settings.runs_dir, args.challenge_id), MACHINE_TEACHER)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return 0
