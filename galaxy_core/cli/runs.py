"""The runs from a terminal: `runs`, `stop`, renaming, the trash, a label review's `reviewed-labels`, TensorBoard,
and the run the class starts from (`lesson`)."""

from __future__ import annotations

import json
import subprocess
import sys

from galaxy_core.answers.review import CLASS_MAJORITY, load_review, record_review_decisions
from galaxy_core.classroom.lesson import lesson_base, set_lesson_base
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.cli.common import ONE_RUN, RUNS_DIR, client_for, store_for, wait_passing_signals_on
from galaxy_core.errors import GalaxyLabError
from galaxy_core.evaluation import LABEL_NOISE_NOTE
from galaxy_core.training import RunState, RunSummary
from galaxy_core.training.kinds import describe_run_model


def runs_command(commands) -> None:
    parser = commands.add_parser("runs", parents=[RUNS_DIR], help="list the training runs")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=_runs)


# (heading, width, the cell of a run)
RUNS_COLUMNS = (
    ("run", 44, lambda summary: summary.id),
    ("state", 11, lambda summary: summary.state.value),
    ("model", 30, lambda summary: describe_run_model(summary.config)),
    ("epochs", 18, RunSummary.epochs_text),
    ("val bal", 8, lambda summary: summary.best_val_balanced_accuracy),
    ("test bal", 8, lambda summary: summary.test_balanced_accuracy),
)


def run_json(summary: RunSummary) -> dict:
    """A run as `galaxy-lab runs --json` prints it."""
    return {
        "id": summary.id,
        "title": summary.title,
        "owner": summary.owner_name,
        "state": summary.state.value,
        "message": summary.message,
        "kind": summary.kind,
        "model": summary.model,
        "base_run": summary.base_run,
        "seed": summary.seed,
        "dataset": summary.dataset.path or summary.dataset.source,
        "executor": summary.executor,
        "node": summary.node,
        "device": summary.device,
        "epochs_done": summary.epochs_done,
        "epochs_planned": summary.epochs_planned,
        "best_val_balanced_accuracy": summary.best_val_balanced_accuracy,
        "test_accuracy": summary.test_accuracy,
        "test_balanced_accuracy": summary.test_balanced_accuracy,
        "test_balanced_accuracy_tta": summary.test_balanced_accuracy_tta,
        "created": summary.created,
        "started": summary.started,
        "finished": summary.finished,
        "error": summary.error,
    }


def _runs(args, settings) -> int:
    client = client_for(args, settings)
    summaries, damaged = client.store.scan()
    client.ensure_service(summaries)
    if args.json:
        rows = [run_json(summary) for summary in summaries]
        rows += [{"id": run.id, "state": "damaged", "message": f"damaged: {run.reason}"} for run in damaged]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"training service: {client.service().describe()}")

    def cell(value, width: int) -> str:
        if isinstance(value, float):
            return f"{value:{width}.4f}"
        return f"{'-' if value is None else value:{width}s}"

    print(" ".join(f"{heading:{width}s}" for heading, width, _ in RUNS_COLUMNS) + "  what happened")
    for summary in summaries:
        print(" ".join(cell(value(summary), width) for _, width, value in RUNS_COLUMNS) + f"  {summary.message}")
    for run in damaged:
        print(f"{run.id:44s} {'damaged':11s} {run.reason}")
    if any(summary.has_test_results for summary in summaries):
        print(f"\n{LABEL_NOISE_NOTE}")
    return 0


def stop_command(commands) -> None:
    parser = commands.add_parser("stop", parents=[ONE_RUN], help="stop a queued or running run")
    parser.set_defaults(run=_stop)


def _stop(args, settings) -> int:
    summary = client_for(args, settings).stop(args.run_id, MACHINE_TEACHER)
    if summary.state is RunState.RUNNING:
        print(f"{summary.id}: stop requested; it ends after its current batch and keeps what it learned")
    else:
        print(f"{summary.id}: {summary.state.value}: {summary.message}")
    return 0


def reviewed_labels_command(commands) -> None:
    parser = commands.add_parser(
        "reviewed-labels",
        parents=[ONE_RUN],
        help="print a label review's doubted labels and decisions as CSV",
        description="The doubted labels of a finished label review, most doubtful first, with the suggested label, "
        "the probabilities and the decisions taken so far (blank: undecided). Train on them with galaxy-lab train "
        "--reviewed-labels FILE.",
    )
    parser.add_argument(
        "--accept-above",
        type=float,
        metavar="P",
        help="first accept every undecided suggestion whose probability is at least P (recorded as the teacher's)",
    )
    parser.add_argument(
        "--decisions",
        default=MACHINE_TEACHER.id,
        metavar="SET",
        help=f"whose decisions: the teacher's (default), '{CLASS_MAJORITY}' (what more reviewers accepted than "
        "rejected), or a reviewer's id",
    )
    parser.set_defaults(run=_reviewed_labels)


def _reviewed_labels(args, settings) -> int:
    summary = store_for(args, settings).get(args.run_id).summary()
    review = load_review(summary, MACHINE_TEACHER, args.decisions)
    if args.accept_above is not None:
        record_review_decisions(summary.run, review.confident_suggestions(args.accept_above), MACHINE_TEACHER)
        review = load_review(summary, MACHINE_TEACHER, args.decisions)
    print(f"{len(review.doubts)} doubted, {len(review.accepted())} accepted", file=sys.stderr)
    sys.stdout.write(review.to_csv())
    return 0


def tensorboard_command(commands) -> None:
    parser = commands.add_parser(
        "tensorboard",
        parents=[RUNS_DIR],
        help="show runs' event files in TensorBoard",
        description="Starts TensorBoard (installed with the lab) on the event files every run writes, Ray runs' "
        "included: every run of the runs folder, or the runs named. Ctrl-C ends it.",
    )
    parser.add_argument("run_ids", nargs="*", metavar="RUN", help="runs to show (default: every run)")
    parser.add_argument("--port", type=int, default=6006, help="the port to serve on (default 6006)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to serve on (default 127.0.0.1)")
    parser.set_defaults(run=_tensorboard)


def _tensorboard(args, settings) -> int:
    store = store_for(args, settings)
    runs = [store.get(run_id) for run_id in args.run_ids] or [summary.run for summary in store.runs()]
    logged = [run for run in runs if run.tensorboard_dir.is_dir()]
    if not logged:
        raise GalaxyLabError("no run has TensorBoard event files yet: they appear with a run's first epoch")
    if "," in str(store.root):
        raise GalaxyLabError(f"TensorBoard cannot read a runs folder whose path holds a comma: {store.root}")
    # Every run's event files under its id; TensorBoard reads "name:folder" pairs, separated by commas.
    pairs = ",".join(f"{run.id}:{run.tensorboard_dir}" for run in logged)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir_spec", pairs, "--host", args.host]
    print(f"TensorBoard on http://{args.host}:{args.port} for {len(logged)} run(s); Ctrl-C ends it", file=sys.stderr)
    return wait_passing_signals_on(subprocess.Popen([*command, "--port", str(args.port)]))


def rename_command(commands) -> None:
    parser = commands.add_parser("rename", parents=[ONE_RUN], help="give a run a title (shown beside its id)")
    parser.add_argument("title", help='its title, e.g. "deeper net, no augmentation" ("" removes it)')
    parser.set_defaults(run=_rename)


def _rename(args, settings) -> int:
    title = client_for(args, settings).rename(args.run_id, args.title, MACHINE_TEACHER)
    print(f"{args.run_id}: {title!r}" if title else f"{args.run_id}: no title")
    return 0


def delete_command(commands) -> None:
    parser = commands.add_parser(
        "delete",
        parents=[ONE_RUN],
        help="move a run to the trash (its worker stopped first)",
        description="The run disappears from every list and menu; galaxy-lab restore brings it back until galaxy-lab "
        "empty-trash deletes the trash for good.",
    )
    parser.set_defaults(run=_delete)


def _delete(args, settings) -> int:
    client = client_for(args, settings)
    megabytes = client.store.get(args.run_id).disk_bytes() / 1e6
    client.delete(args.run_id, MACHINE_TEACHER)
    print(f"{args.run_id}: in the trash ({megabytes:.1f} MB; galaxy-lab restore {args.run_id} brings it back)")
    return 0


def restore_command(commands) -> None:
    parser = commands.add_parser("restore", parents=[ONE_RUN], help="bring a run back from the trash")
    parser.set_defaults(run=_restore)


def _restore(args, settings) -> int:
    summary = client_for(args, settings).restore(args.run_id, MACHINE_TEACHER).summary()
    print(f"{summary.id}: restored ({summary.state.value}: {summary.message})")
    return 0


def empty_trash_command(commands) -> None:
    parser = commands.add_parser("empty-trash", parents=[RUNS_DIR], help="delete the runs in the trash for good")
    parser.set_defaults(run=_empty_trash)


def _empty_trash(args, settings) -> int:
    client = client_for(args, settings)
    megabytes = sum(summary.run.disk_bytes() for summary in client.trashed(MACHINE_TEACHER)) / 1e6
    print(f"{client.empty_trash(MACHINE_TEACHER)} run(s) deleted for good, {megabytes:.1f} MB freed")
    return 0


def lesson_command(commands) -> None:
    parser = commands.add_parser(
        "lesson",
        parents=[RUNS_DIR],
        help="the run the class starts from: show it, set it (RUN) or clear it (--clear)",
        description="Every student's Train page opens on a new head for the class's starting run, and the class "
        "board shows it beside the class's results.",
    )
    parser.add_argument("run_id", nargs="?", metavar="RUN", help="the run to start the class from")
    parser.add_argument("--clear", action="store_true", help="start the class from no run")
    parser.set_defaults(run=_lesson)


def _lesson(args, settings) -> int:
    store = store_for(args, settings)
    if args.clear and args.run_id:
        raise GalaxyLabError("give a run to start the class from, or --clear, not both")
    if args.clear or args.run_id:
        set_lesson_base(store, args.run_id, MACHINE_TEACHER)
    base = lesson_base(store)
    print(f"the class starts from run {base.name} ({base.id})" if base else "the class starts from no run")
    return 0
