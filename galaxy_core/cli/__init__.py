"""`galaxy-lab`: the lab's operations from a terminal, one module per group of commands (data, training, runs,
answers, the server). Each command is a function that adds its parser, beside the handler it runs; the handlers call
the same library functions as the pages.

galaxy-lab serve                  start the web app
galaxy-lab datasets               list the datasets the lab can offer
galaxy-lab data-info DATASET      load a dataset (cached) and print its splits, classes and skipped files
galaxy-lab download VARIANT       fetch a Galaxy10 file (resumable, checksummed)
galaxy-lab train [--dataset D]    queue a training run and follow it here (Ctrl-C stops it); prints the run id last
galaxy-lab runs [--json]          list the runs
galaxy-lab stop RUN               stop a queued or running run
galaxy-lab rename RUN TITLE       give a run a title
galaxy-lab delete RUN             move a run to the trash; restore RUN brings it back; empty-trash deletes for good
galaxy-lab restore RUN            bring a run back from the trash
galaxy-lab empty-trash            delete the runs in the trash for good
galaxy-lab lesson [RUN]           the run the class starts from: show it, set it, or --clear it
galaxy-lab roster ACTION [NAME]   the class's roster for auth = roster: list, add, new-code, remove, teacher
galaxy-lab challenge ACTION       a class challenge on a private test set: new, list, board, reveal, grades, ...
galaxy-lab tensorboard [RUN...]   show runs' event files in TensorBoard
galaxy-lab review-labels          queue a label review of a dataset's training split and follow it here
galaxy-lab ensemble RUN RUN...    queue an ensemble of finished runs (their answers averaged) and follow it here
galaxy-lab reviewed-labels RUN    print a label review's doubted labels and decisions as CSV
galaxy-lab evaluate RUN           evaluate a run's model on its test split or on another labelled dataset
galaxy-lab predict RUN IMAGE...   classify image files (or zips of them) with a run's model
galaxy-lab export RUN             write a run's model as .keras, zipped SavedModel, TFLite and a JSON model card
"""

from __future__ import annotations

import argparse
import sys

from galaxy_core.cli.answers import evaluate_command, export_command, predict_command
from galaxy_core.cli.challenge import challenge_command
from galaxy_core.cli.data import data_info_command, datasets_command, download_command
from galaxy_core.cli.roster import roster_command
from galaxy_core.cli.runs import (
    delete_command,
    empty_trash_command,
    lesson_command,
    rename_command,
    restore_command,
    reviewed_labels_command,
    runs_command,
    stop_command,
    tensorboard_command,
)
from galaxy_core.cli.server import serve_command
from galaxy_core.cli.training import kind_commands, train_command
from galaxy_core.errors import GalaxyLabError
from galaxy_core.runtime import import_tensorflow
from galaxy_core.settings import load_settings

COMMANDS = (
    serve_command,
    datasets_command,
    data_info_command,
    download_command,
    train_command,
    runs_command,
    stop_command,
    rename_command,
    delete_command,
    restore_command,
    empty_trash_command,
    tensorboard_command,
    lesson_command,
    roster_command,
    challenge_command,
    kind_commands,
    reviewed_labels_command,
    evaluate_command,
    predict_command,
    export_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="galaxy-lab", description="Galaxy CNN Lab from a terminal.")
    parser.add_argument("--verbose", action="store_true", help="let TensorFlow print its own start-up log lines")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "needs_tensorflow", False):
        import_tensorflow(verbose=args.verbose)
    try:
        return args.run(args, load_settings())
    except GalaxyLabError as error:  # the lab's own errors say what to do; anything else keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
