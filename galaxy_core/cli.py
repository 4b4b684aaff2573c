"""`galaxy-lab`: the lab's operations from a terminal. Each command is a function that adds its parser, beside
the handler it runs; the handlers call the same library functions as the pages.

galaxy-lab serve                  start the web app
galaxy-lab datasets               list the datasets the lab can offer
galaxy-lab data-info DATASET      load a dataset (cached) and print its splits, classes and skipped files
galaxy-lab download VARIANT       fetch a Galaxy10 file (resumable, checksummed)
galaxy-lab train [--dataset D]    queue a training run and follow it here (Ctrl-C stops it); prints the run id last
galaxy-lab runs [--json]          list the runs
galaxy-lab stop RUN               stop a queued or running run
galaxy-lab review-labels          queue a label review of a dataset's training split and follow it here
galaxy-lab reviewed-labels RUN    print a label review's doubted labels and decisions as CSV
galaxy-lab evaluate RUN           evaluate a run's model on its test split or on another labelled dataset
galaxy-lab predict RUN IMAGE...   classify image files (or zips of them) with a run's model
galaxy-lab export RUN             write a run's model as .keras, zipped SavedModel, TFLite and a JSON model card
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from galaxy_core.data import (
    DATASET_SOURCES,
    PreprocessOptions,
    create_dataset,
    dataset_names_help,
    discover_datasets,
    spec_from_name,
)
from galaxy_core.data.augment import AugmentOptions
from galaxy_core.data.galaxy10 import download_galaxy10
from galaxy_core.errors import GalaxyLabError
from galaxy_core.evaluation import LABEL_NOISE_NOTE, balanced_accuracy_interval
from galaxy_core.export import EXPORT_FORMATS, export_run
from galaxy_core.inference import balanced_accuracy_interval_of, load_run_model, run_class_names, run_dataset_spec
from galaxy_core.prediction import EVALUATION_SPLITS, evaluate_model
from galaxy_core.review import ACTIONS, ReviewError, label_changes_from_csv, load_review
from galaxy_core.runtime import import_tensorflow
from galaxy_core.settings import load_settings
from galaxy_core.training import CHECKPOINTS, RunState, RunStore
from galaxy_core.training.config import (
    DEFAULT_PRESET,
    MAX_FOLDS,
    MIN_FOLDS,
    MONITORS,
    OPTIMIZERS,
    PRESETS,
    REVIEW_PRESET,
    SCHEDULES,
    VALIDATION_SOURCES,
    label_review_config,
    preset_config,
    recommended_config,
)
from galaxy_core.training.manager import JobManager
from galaxy_core.uploads import ImageInput, UploadLimits, predict_images, prediction_rows, read_upload_paths


def _terminal_progress(done: int, total: int, message: str) -> None:
    """Progress of a long load: one rewritten line on a terminal; elsewhere (a log file), only each step's end."""
    finished = bool(total) and done >= total
    if sys.stderr.isatty():
        percent = f"{100 * done / total:5.1f}% " if total else ""
        print(f"\r{percent}{message}", end="\n" if finished else "", file=sys.stderr, flush=True)
    elif finished:
        print(message, file=sys.stderr, flush=True)


def _manager(args, settings) -> JobManager:
    """The training service's manager for the runs folder of --runs-dir or the settings."""
    return JobManager.from_settings(settings, getattr(args, "runs_dir", None))


def _store(args, settings) -> RunStore:
    return _manager(args, settings).store


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
        parser.add_argument("--dataset", default="synthetic", help=dataset_names_help() + " (default synthetic)")
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
    spec = spec_from_name(args.dataset, settings)
    given = {
        key.removeprefix("source_"): value
        for key, value in vars(args).items()
        if key.startswith("source_") and value is not None
    }
    return spec.with_options(**given).with_preprocess(
        image_size=args.image_size, crop_fraction=args.crop_fraction, channels=1 if args.grayscale else None
    )


def app_file() -> Path:
    """The app's router, app.py: beside the galaxy_core package, in a checkout as in an installed wheel."""
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not (app.is_file() and (app.parent / "pages" / "ui" / "navigation.py").is_file()):
        raise GalaxyLabError(f"the app (app.py and pages/) is not beside galaxy_core in {app.parent}")
    return app


def serve_command(commands) -> None:
    parser = commands.add_parser("serve", help="start the web app")
    parser.add_argument("--port", type=int, default=8501, help="the port to serve on (default 8501)")
    parser.add_argument("--headless", action="store_true", help="do not open a browser")
    parser.set_defaults(run=_serve)


def _run_the_app_once(port: int) -> None:
    """Once the server answers, have it run the app once (Streamlit's script health check: Home, in a session of
    its own), which starts the server's warm-up (the default dataset, the pages' modules, TensorFlow) before the
    first person visits rather than during their first clicks. Nothing is said if it cannot: visits still work."""
    base = f"http://127.0.0.1:{port}/_stcore"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/health", timeout=2).read() == b"ok":
                urllib.request.urlopen(f"{base}/script-health-check", timeout=120).read()
                return
        except OSError:
            time.sleep(0.5)


def _serve(args, settings) -> int:
    """Streamlit in a child process (SIGINT and SIGTERM are passed on to it; serve returns when it has ended), the
    app run once as soon as it answers (to start the server's warm-up), and beside it a low-priority warm-up of the
    default dataset's cache and TensorFlow's files."""
    app = app_file()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        f"--server.maxUploadSize={settings.upload_limit_mb}",
        f"--server.port={args.port}",
        "--server.scriptHealthCheckEnabled=true",
    ]
    if args.headless:
        command.append("--server.headless=true")
    manager = _manager(args, settings)
    manager.ensure_service(manager.store.runs())  # resume the queue after a restart, before anyone looks
    quiet = {} if args.verbose else {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    server = subprocess.Popen(command, env={**os.environ, **quiet})
    warm_up = subprocess.Popen([sys.executable, "-m", "galaxy_core.runtime"], env={**os.environ, **quiet})
    threading.Thread(target=_run_the_app_once, args=(args.port,), daemon=True, name="first-run").start()

    def pass_on(signal_number, frame) -> None:
        server.send_signal(signal_number)

    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, pass_on)
    status = server.wait()
    warm_up.terminate()  # done long since, unless the server was stopped at once
    warm_up.wait()
    return status


def datasets_command(commands) -> None:
    parser = commands.add_parser("datasets", help="list the datasets found (synthetic, data roots, downloads)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=_datasets)


def _datasets(args, settings) -> int:
    choices = discover_datasets(settings)
    if args.json:
        print(json.dumps([{"label": c.label, "spec": c.spec.to_dict()} for c in choices], indent=2))
    else:
        for choice in choices:
            print(f"{choice.label:40s} {json.dumps(choice.spec.to_dict())}")
    return 0


def data_info_command(commands) -> None:
    parser = commands.add_parser("data-info", help="load a dataset and print its splits and class counts")
    add_dataset_arguments(parser)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=_data_info)


def _data_info(args, settings) -> int:
    spec = dataset_spec_from_args(args, settings)
    started = time.perf_counter()
    dataset = create_dataset(spec, cache_dir=settings.cache_dir, progress=_terminal_progress)
    seconds = time.perf_counter() - started
    counts = dataset.class_counts()
    summary = {
        "name": dataset.name,
        "spec": dataset.spec.to_dict(),
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.splits["train"].images.shape[1:]),
        "splits": {split: {"total": int(c.sum()), "per_class": c.tolist()} for split, c in counts.items()},
        "skipped": [{"name": s.name, "reason": s.reason} for s in dataset.skipped],
        "load_seconds": round(seconds, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{dataset.name}: {dataset.description}")
    print(f"images {summary['image_shape']}, loaded in {seconds:.2f} s")
    width = max(len(name) for name in dataset.class_names)
    print(f"{'class':{width}s} " + " ".join(f"{split:>7s}" for split in counts))
    for index, name in enumerate(dataset.class_names):
        print(f"{name:{width}s} " + " ".join(f"{int(c[index]):7d}" for c in counts.values()))
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} file(s):")
        for skipped in dataset.skipped:
            print(f"  {skipped.name}: {skipped.reason}")
    return 0


def download_command(commands) -> None:
    parser = commands.add_parser("download", help="download a Galaxy10 HDF5 file")
    parser.add_argument("variant", choices=["sdss", "decals"])
    parser.add_argument("--dest", type=Path, help="folder to save into (default: the cache's downloads/)")
    parser.add_argument("--url", help="another address for the same file (a mirror)")
    parser.add_argument("--sha256", help="the expected checksum when --url serves another file")
    parser.set_defaults(run=_download)


def _download(args, settings) -> int:
    path = download_galaxy10(
        args.variant, args.dest or settings.download_dir, url=args.url, sha256=args.sha256, progress=_terminal_progress
    )
    print(f"\n{path}")
    return 0


def train_command(commands) -> None:
    parser = commands.add_parser(
        "train",
        parents=[RUNS_DIR],
        help="queue a training run and follow it here",
        description="Queues a run with a preset recipe (the recommended one unless --preset says otherwise; change "
        "single settings with the options below) and follows it in this terminal: Ctrl-C asks it to stop, and it "
        "keeps what it learned. The run goes through the same queue as the app's, so it counts toward "
        "max_concurrent_runs. The run id is printed last.",
    )
    add_dataset_arguments(
        parser, positional=False, image_size_default=f"the preset's; with --model, {PreprocessOptions().image_size}"
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default=DEFAULT_PRESET,
        help="a whole recipe: model, input size and settings. "
        + " ".join(
            f"{name}: {p.model} at {p.image_size} px, {p.settings['epochs']} epochs. {p.description}"
            for name, p in PRESETS.items()
        )
        + f" (default {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--model",
        help="another registered model, trained with its own recipe at the dataset's input size (default: the "
        "preset's)",
    )
    parser.add_argument("--model-options", help="builder options as JSON, e.g. '{\"blocks\": 4}'")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="images per step (default: the model's recipe)")
    parser.add_argument("--learning-rate", type=float, help="initial learning rate (default: the model's recipe)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default cosine)")
    parser.add_argument(
        "--weight-averaging",
        type=float,
        metavar="MOMENTUM",
        help="keep a moving average of the weights with this momentum (e.g. 0.98): validation, the checkpoints and "
        "the final model use it (default: the preset's)",
    )
    parser.add_argument("--monitor", choices=MONITORS, help="what early stopping and the best checkpoint watch")
    parser.add_argument("--patience", type=int, help="epochs without improvement before stopping (default 10)")
    parser.add_argument("--no-early-stopping", action="store_true")
    parser.add_argument("--no-class-weights", action="store_true", help="do not reweight imbalanced classes")
    parser.add_argument("--no-augment", action="store_true", help="no flips, rotations, zoom or brightness")
    parser.add_argument(
        "--validation",
        choices=VALIDATION_SOURCES,
        help="the dataset's val split (default), or a share held out of the training split",
    )
    parser.add_argument("--validation-fraction", type=float, help="share of train held out (default 0.1)")
    parser.add_argument("--seed", type=int, help="training seed: same seed and config, same curve (default 0)")
    parser.add_argument(
        "--reviewed-labels",
        type=Path,
        metavar="CSV",
        help="train on a label review's accepted suggestions (the CSV of galaxy-lab reviewed-labels or the Label "
        "review page); only the training split changes",
    )
    parser.add_argument(
        "--accepted",
        choices=ACTIONS,
        default="relabel",
        help="what the accepted suggestions do: relabel (default) or leave_out the images",
    )
    parser.add_argument("--detach", action="store_true", help="queue the run, print its id and return at once")
    parser.set_defaults(run=_train)


RETURN = "\r"  # back to the start of a terminal's line, over the batch line


def _print_record(record: dict, live: bool) -> None:
    """A metrics record in the terminal: a line per epoch; batches on one rewritten line, only on a terminal."""
    if record.get("kind") == "batch":
        if live:
            print(
                f"\r  epoch {record['epoch'] + 1} step {record['step']}: loss {record['loss']:.4f} "
                f"accuracy {record['accuracy']:.3f}",
                end="",
                file=sys.stderr,
                flush=True,
            )
        return
    if record.get("kind") == "review_epoch":
        print(
            f"{RETURN if live else ''}epoch {record['epoch']}: loss {record['loss']:.4f}", file=sys.stderr, flush=True
        )
        return
    if record.get("kind") == "partial_epoch":
        print(
            f"{RETURN if live else ''}epoch {record['epoch']} cut short after {record['batches']} of "
            f"{record['of_batches']} batches",
            file=sys.stderr,
        )
        return
    figures = "  ".join(
        f"{key} {record[key]:.4f}"
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_balanced_accuracy")
        if key in record
    )
    print(
        f"{RETURN if live else ''}epoch {record['epoch']}: {figures}  {record['images_per_second']:.0f} img/s  "
        f"ETA {record['eta_seconds'] / 60:.1f} min",
        file=sys.stderr,
        flush=True,
    )


def _follow(manager, run):
    """Print a run's progress until it ends; returns its final summary. Ctrl-C raises KeyboardInterrupt."""

    live, last_message, summary = sys.stderr.isatty(), None, None
    for records, summary in manager.follow(run):
        for record in records:
            _print_record(record, live)
        line = f"{summary.state.value}: {summary.message}"
        if line != last_message and summary.state is not RunState.FINISHED:
            print(("\n" if live else "") + line, file=sys.stderr, flush=True)
            last_message = line
    return summary


def _label_changes(args) -> dict:
    """The config fields of --reviewed-labels (the run checks the classes against its dataset)."""
    if args.reviewed_labels is None:
        return {}
    try:
        data = args.reviewed_labels.read_bytes()
    except OSError as error:
        raise ReviewError(f"{args.reviewed_labels} cannot be read: {error.strerror or error}") from None
    return {
        "label_changes": label_changes_from_csv(data, None, args.accepted),
        "label_changes_from": f"{args.reviewed_labels.name}, accepted suggestions {ACTIONS[args.accepted]}",
    }


def _train(args, settings) -> int:
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "weight_averaging": args.weight_averaging,
        "monitor": args.monitor,
        "patience": args.patience,
        "seed": args.seed,
        "validation": args.validation,
        "validation_fraction": args.validation_fraction,
        "early_stopping": False if args.no_early_stopping else None,
        "class_weighting": False if args.no_class_weights else None,
        "augment": AugmentOptions(flip=False, rotate=False, zoom=0.0, brightness=0.0) if args.no_augment else None,
    }
    overrides["model_options"] = json.loads(args.model_options) if args.model_options else None
    overrides = {key: value for key, value in overrides.items() if value is not None} | _label_changes(args)
    dataset = dataset_spec_from_args(args, settings)
    if args.model and args.model != PRESETS[args.preset].model:
        config = recommended_config(dataset, args.model, **overrides)
    else:
        config = preset_config(dataset, args.preset, image_size=args.image_size, **overrides)
    return _queue_and_follow(_manager(args, settings), config, args.detach)


def _queue_and_follow(manager, config, detach: bool) -> int:
    """Queue a run, follow it here unless `detach`, and print its id last."""
    run = manager.submit(config)
    print(f"run {run.id} queued in {run.path.parent}", file=sys.stderr)
    if detach:
        print(run.id)
        return 0
    try:
        summary = _follow(manager, run)
    except KeyboardInterrupt:
        manager.stop(run.id)
        print(
            "\nstop requested: the run ends after its current batch and keeps what it learned "
            "(Ctrl-C again leaves it to end in the background)",
            file=sys.stderr,
        )
        try:
            summary = _follow(manager, run)
        except KeyboardInterrupt:
            print(f"\n{run.id} goes on in the background: galaxy-lab runs", file=sys.stderr)
            print(run.id)
            return 130
    if summary.has_test_results:
        interval = _interval_words(balanced_accuracy_interval_of(run))
        print(
            f"{summary.message}: test accuracy {summary.test_accuracy:.4f}, balanced accuracy "
            f"{summary.test_balanced_accuracy:.4f}{interval}\n{LABEL_NOISE_NOTE}",
            file=sys.stderr,
        )
    elif summary.state is RunState.FINISHED:
        print(summary.message, file=sys.stderr)
    print(run.id)
    return 0 if summary.state in (RunState.FINISHED, RunState.STOPPED) else 1


def review_labels_command(commands) -> None:
    parser = commands.add_parser(
        "review-labels",
        parents=[RUNS_DIR],
        help="queue a label review of a dataset's training split and follow it here",
        description=f"Trains --folds models of the {REVIEW_PRESET} preset, each on all but one fold of the training "
        "split, lets each predict the fold it did not see, and ranks the labels those predictions doubt "
        "(confident learning). Decide on them on the Label review page, or export them with galaxy-lab "
        "reviewed-labels. The run id is printed last.",
    )
    add_dataset_arguments(parser, positional=False, image_size_default=f"the {REVIEW_PRESET} preset's")
    parser.add_argument("--folds", type=int, default=5, help=f"models trained, {MIN_FOLDS}-{MAX_FOLDS} (default 5)")
    parser.add_argument(
        "--epochs", type=int, help=f"epochs of each fold's model (default: the {REVIEW_PRESET} preset's)"
    )
    parser.add_argument("--detach", action="store_true", help="queue the review, print its id and return at once")
    parser.set_defaults(run=_review_labels)


def _review_labels(args, settings) -> int:
    epochs = {"epochs": args.epochs} if args.epochs else {}
    config = label_review_config(
        dataset_spec_from_args(args, settings), args.folds, image_size=args.image_size, **epochs
    )
    return _queue_and_follow(_manager(args, settings), config, args.detach)


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
        help="first accept every undecided suggestion whose probability is at least P (recorded in the review)",
    )
    parser.set_defaults(run=_reviewed_labels)


def _reviewed_labels(args, settings) -> int:
    summary = _store(args, settings).get(args.run_id).summary()
    review = load_review(summary)
    if args.accept_above is not None:
        summary.run.record_review_decisions(review.confident_suggestions(args.accept_above))
        review = load_review(summary)
    print(f"{len(review.doubts)} doubted, {len(review.accepted())} accepted", file=sys.stderr)
    sys.stdout.write(review.to_csv())
    return 0


def runs_command(commands) -> None:
    parser = commands.add_parser("runs", parents=[RUNS_DIR], help="list the training runs")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=_runs)


# (column of RunSummary.table_row, heading, width)
RUNS_COLUMNS = (
    ("run", "run", 44),
    ("state", "state", 11),
    ("model", "model", 16),
    ("epochs", "epochs", 18),
    ("val balanced acc", "val bal", 8),
    ("test balanced acc", "test bal", 8),
)


def _runs(args, settings) -> int:
    manager = _manager(args, settings)
    summaries, damaged = manager.store.scan()
    manager.ensure_service(summaries)
    if args.json:
        rows = [summary.to_json() for summary in summaries]
        rows += [{"id": run.id, "state": "damaged", "message": f"damaged: {run.reason}"} for run in damaged]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"training service: {manager.service().describe()}")

    def cell(value, width: int) -> str:
        if isinstance(value, float):
            return f"{value:{width}.4f}"
        return f"{'-' if value is None else value:{width}s}"

    print(" ".join(f"{heading:{width}s}" for _, heading, width in RUNS_COLUMNS) + "  what happened")
    for summary in summaries:
        row = summary.table_row()
        print(" ".join(cell(row[key], width) for key, _, width in RUNS_COLUMNS) + f"  {row['what happened']}")
    for run in damaged:
        print(f"{run.id:44s} {'damaged':11s} {run.reason}")
    if any(summary.has_test_results for summary in summaries):
        print(f"\n{LABEL_NOISE_NOTE}")
    return 0


def stop_command(commands) -> None:
    parser = commands.add_parser("stop", parents=[ONE_RUN], help="stop a queued or running run")
    parser.set_defaults(run=_stop)


def _stop(args, settings) -> int:
    summary = _manager(args, settings).stop(args.run_id)
    if summary.state is RunState.RUNNING:
        print(f"{summary.id}: stop requested; it ends after its current batch and keeps what it learned")
    else:
        print(f"{summary.id}: {summary.state.value}: {summary.message}")
    return 0


def _interval_words(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f" (95% bootstrap interval {interval[0]:.4f} to {interval[1]:.4f})"


def evaluate_command(commands) -> None:
    parser = commands.add_parser(
        "evaluate",
        parents=[WITH_TTA],
        help="evaluate a run's model on a labelled dataset",
        description="Images are preprocessed as the run's were (size, crop, channels); the dataset's class names "
        "must be the run's.",
    )
    parser.add_argument("--dataset", help=dataset_names_help() + " (default: the run's own dataset)")
    parser.add_argument(
        "--split",
        choices=EVALUATION_SPLITS,
        default="test",
        help="which images: a split, or all of the dataset's images (default test)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object with every figure")
    parser.set_defaults(run=_evaluate, needs_tensorflow=True)


def _evaluate(args, settings) -> int:
    run = _store(args, settings).get(args.run_id)
    spec = run_dataset_spec(run, spec_from_name(args.dataset, settings) if args.dataset else None)
    dataset = create_dataset(spec, cache_dir=settings.cache_dir, progress=_terminal_progress)
    model = load_run_model(run, args.checkpoint)
    result = evaluate_model(model, dataset, run_class_names(run), args.split, tta=args.tta)
    summary = result.summary
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    names = summary["class_names"]
    print(
        f"run {run.id} ({args.checkpoint} model) on {dataset.name}, split {args.split}, {len(result.labels)} images"
        + (", averaged over 8 flips/rotations" if args.tta else "")
    )
    print(f"accuracy           {summary['accuracy']:.4f}")
    interval = balanced_accuracy_interval(result.labels, result.probabilities.argmax(axis=1))
    print(f"balanced accuracy  {summary['balanced_accuracy']:.4f}{_interval_words(interval)}")
    print(f"macro F1           {summary['macro_f1']:.4f}")
    width = max(len(name) for name in names) + 2
    print(f"\n{'class':{width}s} precision  recall      F1  support")
    for name, figures in summary["per_class"].items():
        print(
            f"{name:{width}s} {figures['precision']:9.4f} {figures['recall']:7.4f} {figures['f1']:7.4f} "
            f"{figures['support']:8d}"
        )
    print(
        f"\nconfusion matrix (rows: true class, columns: predicted)\n{'':{width}s}"
        + "".join(f"{n:>10s}" for n in names)
    )
    for name, row in zip(names, summary["confusion_matrix"], strict=True):
        print(f"{name:{width}s}" + "".join(f"{count:10d}" for count in row))
    print(f"\n{LABEL_NOISE_NOTE}")
    return 0


def predict_command(commands) -> None:
    parser = commands.add_parser(
        "predict",
        parents=[WITH_TTA],
        help="classify image files with a run's model",
        description="Each file that cannot be used is reported with its reason; the others are still classified. "
        "Exit status 0 when at least one file was classified.",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files or zip archives")
    parser.add_argument("--json", action="store_true", help="one JSON list, an object per file")
    parser.set_defaults(run=_predict, needs_tensorflow=True)


def _predict(args, settings) -> int:
    run = _store(args, settings).get(args.run_id)
    options = run.summary().dataset.preprocess
    uploads = read_upload_paths(args.images, options, UploadLimits.from_settings(settings))
    images = [upload for upload in uploads if isinstance(upload, ImageInput)]
    predictions = predict_images(load_run_model(run, args.checkpoint), images, tta=args.tta) if images else []
    results = prediction_rows(uploads, predictions, run_class_names(run))
    status = 0 if images else 1
    if args.json:
        print(json.dumps(results, indent=2))
        return status
    for result in results:
        if "error" in result:
            print(f"{result['file']}: not classified: {result['error']}", file=sys.stderr)
            continue
        figures = "  ".join(f"{name} {value:.3f}" for name, value in result["probabilities"].items())
        notes = "".join(f"\n    note: {warning}" for warning in result.get("warnings", []))
        print(f"{result['file']}: {result['label']}  ({figures}){notes}")
    return status


def export_command(commands) -> None:
    parser = commands.add_parser("export", parents=[WHICH_MODEL], help="write a run's model for use elsewhere")
    parser.add_argument("--format", choices=[*EXPORT_FORMATS, "all"], default="all", help="what to write (default all)")
    parser.add_argument("--output", type=Path, default=Path("exports"), help="folder to write into (default exports)")
    parser.set_defaults(run=_export, needs_tensorflow=True)


def _export(args, settings) -> int:
    run = _store(args, settings).get(args.run_id)
    formats = EXPORT_FORMATS if args.format == "all" else (args.format,)
    for export_format in formats:
        print(export_run(run, export_format, args.output, args.checkpoint))
    return 0


COMMANDS = (
    serve_command,
    datasets_command,
    data_info_command,
    download_command,
    train_command,
    runs_command,
    stop_command,
    review_labels_command,
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


if __name__ == "__main__":
    sys.exit(main())
