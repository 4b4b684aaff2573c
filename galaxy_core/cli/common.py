"""What several commands share: the runs folder and run options, the dataset options, progress on a terminal."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from galaxy_core.data import DATASET_SOURCES, PreprocessOptions, dataset_names_help, spec_from_name
from galaxy_core.training import CHECKPOINTS, RunStore
from galaxy_core.training.client import ServiceClient


def terminal_progress(done: int, total: int, message: str) -> None:
    """Progress of a long load: one rewritten line on a terminal; elsewhere (a log file), only each step's end."""
    finished = bool(total) and done >= total
    if sys.stderr.isatty():
        percent = f"{100 * done / total:5.1f}% " if total else ""
        print(f"\r{percent}{message}", end="\n" if finished else "", file=sys.stderr, flush=True)
    elif finished:
        print(message, file=sys.stderr, flush=True)


def client_for(args, settings) -> ServiceClient:
    """The training service's client for the runs folder of --runs-dir or the settings."""
    return ServiceClient.from_settings(settings, getattr(args, "runs_dir", None))


def wait_passing_signals_on(child: subprocess.Popen) -> int:
    """Wait for a child process (a server), passing SIGINT and SIGTERM on to it: it ends when this command is asked
    to, and no child is left behind. Returns its exit status."""
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda number, frame: child.send_signal(number))
    return child.wait()


def store_for(args, settings) -> RunStore:
    return client_for(args, settings).store


# Options several commands share.
RUNS_DIR = argparse.ArgumentParser(add_help=False)
RUNS_DIR.add_argument("--runs-dir", type=Path, help="runs folder (default: GALAXY_LAB_RUNS_DIR or settings)")
ONE_RUN = argparse.ArgumentParser(add_help=False, parents=[RUNS_DIR])
ONE_RUN.add_argument("run_id", metavar="RUN", help="run id (see galaxy-lab runs)")
WHICH_MODEL = argparse.ArgumentParser(add_help=False, parents=[ONE_RUN])
WHICH_MODEL.add_argument("--checkpoint", choices=CHECKPOINTS, default="best", help="which model (default best)")
WITH_TTA = argparse.ArgumentParser(add_help=False, parents=[WHICH_MODEL])
WITH_TTA.add_argument("--tta", action="store_true", help="average over the 8 flips and quarter turns")


def add_dataset_arguments(
    parser: argparse.ArgumentParser, positional: bool = True, image_size_default: str | None = None
) -> None:
    """The dataset, its preprocessing, and a flag for every terminal option of the registered sources;
    `image_size_default` says where the input size comes from when it is not the preprocessing default."""
    if positional:
        parser.add_argument("dataset", help=dataset_names_help())
    else:
        parser.add_argument("--dataset", help=dataset_names_help() + " (default synthetic)")
    defaults = PreprocessOptions()
    parser.add_argument(
        "--image-size",
        type=int,
        help=f"side of the square input in pixels (default {image_size_default or defaults.image_size})",
    )
    parser.add_argument(
        "--crop-fraction",
        type=float,
        help="centre crop as a fraction of the shorter side, before resizing (default: the settings' "
        f"dataset_defaults for the folder, else {defaults.crop_fraction})",
    )
    parser.add_argument("--grayscale", action="store_true", help="one channel instead of RGB")
    flags: dict[str, tuple] = {}
    for source in DATASET_SOURCES.values():
        for option in source.options:
            if option.flag:
                flags.setdefault(option.flag, (option, []))[1].append(source.name)
    for flag, (option, sources) in flags.items():
        only = "" if len(sources) == len(DATASET_SOURCES) else f"{', '.join(sources)} only: "
        parser.add_argument(
            flag,
            dest=f"source_{option.name}",
            metavar=option.name.upper(),
            type=option.kind,
            choices=option.choices or None,
            help=f"{only}{option.help} (default {option.default})",
        )


def dataset_spec_from_args(args: argparse.Namespace, settings):
    """The DatasetSpec the dataset arguments name. A flag its source does not take is refused where every spec is
    checked (create_dataset, TrainConfig), with the options the source does take."""
    spec = spec_from_name(args.dataset or "synthetic", settings)
    given = {
        key.removeprefix("source_"): value
        for key, value in vars(args).items()
        if key.startswith("source_") and value is not None
    }
    return spec.with_options(**given).with_preprocess(
        image_size=args.image_size, crop_fraction=args.crop_fraction, channels=1 if args.grayscale else None
    )


def interval_words(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f" (95% bootstrap interval {interval[0]:.4f} to {interval[1]:.4f})"
