"""`galaxy-lab`: the lab's operations from a terminal.

galaxy-lab serve                  start the web app
galaxy-lab datasets               list the datasets the lab can offer
galaxy-lab data-info DATASET      load a dataset (cached) and print its splits, classes and skipped files
galaxy-lab download VARIANT       fetch a Galaxy10 file (resumable, checksummed)
galaxy-lab train [--dataset D]    queue a training run and follow it here (Ctrl-C stops it); prints the run id last
galaxy-lab runs [--json]          list the runs
galaxy-lab stop RUN               stop a queued or running run
galaxy-lab evaluate RUN           evaluate a run's model on its test split or on another labelled dataset
galaxy-lab predict RUN IMAGE...   classify image files (or zips of them) with a run's model
galaxy-lab export RUN             write a run's model as .keras, zipped SavedModel, TFLite and a JSON model card
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from galaxy_core.data import DATASET_SOURCES, PreprocessOptions, dataset_names_help
from galaxy_core.settings import SettingsError, load_settings

APP_FILE = Path(__file__).resolve().parent.parent / "app.py"


def _terminal_progress(done: int, total: int, message: str) -> None:
    percent = f"{100 * done / total:5.1f}% " if total else ""
    end = "\n" if total and done >= total else ""
    print(f"\r{percent}{message}", end=end, file=sys.stderr, flush=True)


def add_dataset_arguments(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    """The dataset, its preprocessing, and a flag for every terminal option of the registered sources."""
    if positional:
        parser.add_argument("dataset", help=dataset_names_help())
    else:
        parser.add_argument("--dataset", default="synthetic", help=dataset_names_help() + " (default synthetic)")
    defaults = PreprocessOptions()
    parser.add_argument(
        "--image-size", type=int, help=f"side of the square input in pixels (default {defaults.image_size})"
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
            type=option.kind,
            choices=option.choices or None,
            help=f"{only}{option.help} (default {option.default})",
        )


def dataset_spec_from_args(args: argparse.Namespace, settings):
    """The DatasetSpec the dataset arguments name; a flag the dataset's source does not take is an error."""
    from galaxy_core.data import dataset_source, spec_from_name

    spec = spec_from_name(args.dataset, settings)
    given = {
        key.removeprefix("source_"): value
        for key, value in vars(args).items()
        if key.startswith("source_") and value is not None
    }
    source = dataset_source(spec.source)
    for name in given:
        source.option(name)  # raises, naming what the source takes
    return spec.with_options(**given).with_preprocess(
        image_size=args.image_size, crop_fraction=args.crop_fraction, channels=1 if args.grayscale else None
    )


def _serve(args, settings) -> int:
    from galaxy_core.training.manager import JobManager

    if not APP_FILE.is_file():
        print(f"error: {APP_FILE} not found; run from a checkout of Galaxy CNN Lab", file=sys.stderr)
        return 2
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        f"--server.maxUploadSize={settings.upload_limit_mb}",
        f"--server.port={args.port}",
    ]
    if args.headless:
        command.append("--server.headless=true")
    manager = JobManager.from_settings(settings)
    manager.ensure_service(manager.store.runs())  # resume the queue after a restart, before anyone looks
    return subprocess.call(command)


def _datasets(args, settings) -> int:
    from galaxy_core.data import discover_datasets

    choices = discover_datasets(settings)
    if args.json:
        print(json.dumps([{"label": c.label, "spec": c.spec.to_dict()} for c in choices], indent=2))
    else:
        for choice in choices:
            print(f"{choice.label:40s} {json.dumps(choice.spec.to_dict())}")
    return 0


def _data_info(args, settings) -> int:
    from galaxy_core.data import create_dataset

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


def _download(args, settings) -> int:
    from galaxy_core.data.galaxy10 import download_galaxy10

    path = download_galaxy10(
        args.variant, args.dest or settings.download_dir, url=args.url, sha256=args.sha256, progress=_terminal_progress
    )
    print(f"\n{path}")
    return 0


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
    if record.get("kind") == "partial_epoch":
        print(
            f"\repoch {record['epoch']} cut short after {record['batches']} of {record['of_batches']} batches",
            file=sys.stderr,
        )
        return
    figures = "  ".join(
        f"{key} {record[key]:.4f}"
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_balanced_accuracy")
        if key in record
    )
    print(
        f"\repoch {record['epoch']}: {figures}  {record['images_per_second']:.0f} img/s  "
        f"ETA {record['eta_seconds'] / 60:.1f} min",
        file=sys.stderr,
        flush=True,
    )


def _follow(manager, run):
    """Print a run's progress until it ends; returns its final summary. Ctrl-C raises KeyboardInterrupt."""
    from galaxy_core.training import RunState

    live, last_message, summary = sys.stderr.isatty(), None, None
    for records, summary in manager.follow(run):
        for record in records:
            _print_record(record, live)
        line = f"{summary.state.value}: {summary.message}"
        if line != last_message and summary.state is not RunState.FINISHED:
            print(("\n" if live else "") + line, file=sys.stderr, flush=True)
            last_message = line
    return summary


def _train(args, settings) -> int:
    from galaxy_core.data.augment import AugmentOptions
    from galaxy_core.training import RunState
    from galaxy_core.training.config import recommended_config
    from galaxy_core.training.manager import JobManager

    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "monitor": args.monitor,
        "patience": args.patience,
        "seed": args.seed,
        "validation": args.validation,
        "validation_fraction": args.validation_fraction,
        "early_stopping": False if args.no_early_stopping else None,
        "class_weighting": False if args.no_class_weights else None,
        "augment": AugmentOptions(flip=False, rotate=False, zoom=0.0, brightness=0.0) if args.no_augment else None,
    }
    dataset = dataset_spec_from_args(args, settings)
    options = json.loads(args.model_options) if args.model_options else {}
    config = recommended_config(
        dataset, args.model, model_options=options, **{k: v for k, v in overrides.items() if v is not None}
    )
    manager = JobManager.from_settings(settings, args.runs_dir)
    run = manager.submit(config)
    print(f"run {run.id} queued in {run.path.parent}", file=sys.stderr)
    if args.detach:
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
        print(
            f"{summary.message}: test accuracy {summary.test_accuracy:.4f}, balanced accuracy "
            f"{summary.test_balanced_accuracy:.4f}",
            file=sys.stderr,
        )
    elif summary.state is RunState.FINISHED:
        print(summary.message, file=sys.stderr)
    print(run.id)
    return 0 if summary.state in (RunState.FINISHED, RunState.STOPPED) else 1


def _runs(args, settings) -> int:
    from galaxy_core.training.manager import JobManager

    manager = JobManager.from_settings(settings, args.runs_dir)
    summaries, damaged = manager.store.scan()
    manager.ensure_service(summaries)
    if args.json:
        rows = [summary.to_json() for summary in summaries]
        rows += [{"id": run.id, "state": "damaged", "message": f"damaged: {run.reason}"} for run in damaged]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"training service: {manager.service().describe()}")

    def fmt(value):
        return f"{value:8.4f}" if isinstance(value, float) else f"{'-':>8s}"

    print(f"{'run':44s} {'state':11s} {'model':16s} {'epochs':>7s} {'val bal':>8s} {'test bal':>8s}  what happened")
    for summary in summaries:
        epochs = f"{summary.epochs_done}/{summary.epochs_planned or '?'}"
        print(
            f"{summary.id:44s} {summary.state.value:11s} {summary.model:16s} {epochs:>7s} "
            f"{fmt(summary.best_val_balanced_accuracy)} {fmt(summary.test_balanced_accuracy)}  {summary.message}"
        )
    for run in damaged:
        print(f"{run.id:44s} {'damaged':11s} {run.reason}")
    return 0


def _stop(args, settings) -> int:
    from galaxy_core.training import RunState
    from galaxy_core.training.manager import JobManager

    summary = JobManager.from_settings(settings, args.runs_dir).stop(args.run_id)
    if summary.state is RunState.RUNNING:
        print(f"{summary.id}: stop requested; it ends after its current batch and keeps what it learned")
    else:
        print(f"{summary.id}: {summary.state.value}: {summary.message}")
    return 0


def _evaluate(args, settings) -> int:
    from galaxy_core.data import create_dataset, spec_from_name
    from galaxy_core.inference import load_run_model, run_class_names, run_dataset_spec
    from galaxy_core.prediction import evaluate_model
    from galaxy_core.training import RunStore

    run = RunStore(args.runs_dir or settings.runs_dir).get(args.run_id)
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
    print(f"balanced accuracy  {summary['balanced_accuracy']:.4f}")
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
    return 0


def _predict(args, settings) -> int:
    from galaxy_core.inference import load_run_model, run_class_names
    from galaxy_core.training import RunStore
    from galaxy_core.uploads import ImageInput, UploadLimits, predict_images, read_upload_paths

    run = RunStore(args.runs_dir or settings.runs_dir).get(args.run_id)
    options = run.summary().dataset.preprocess
    uploads = read_upload_paths(args.images, options, UploadLimits.from_settings(settings))
    images = [upload for upload in uploads if isinstance(upload, ImageInput)]
    class_names = run_class_names(run)
    predictions = iter(predict_images(load_run_model(run, args.checkpoint), images, tta=args.tta) if images else [])
    results = []
    for upload in uploads:  # results follow the inputs in order
        if not isinstance(upload, ImageInput):
            results.append({"file": upload.name, "error": upload.reason})
            continue
        prediction = next(predictions)
        result = {
            "file": upload.name,
            "label": class_names[prediction.label_index],
            "probabilities": dict(zip(class_names, map(float, prediction.probabilities), strict=True)),
        }
        if prediction.spread is not None:
            result["spread"] = dict(zip(class_names, map(float, prediction.spread), strict=True))
        if upload.warnings:
            result["warnings"] = list(upload.warnings)
        results.append(result)
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


def _export(args, settings) -> int:
    from galaxy_core.export import EXPORT_FORMATS, export_run
    from galaxy_core.training import RunStore

    run = RunStore(args.runs_dir or settings.runs_dir).get(args.run_id)
    formats = EXPORT_FORMATS if args.format == "all" else (args.format,)
    for export_format in formats:
        print(export_run(run, export_format, args.output, args.checkpoint))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="galaxy-lab", description="Galaxy CNN Lab from a terminal.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the web app")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--headless", action="store_true", help="do not open a browser")
    serve.set_defaults(run=_serve)

    datasets = commands.add_parser("datasets", help="list the datasets found (synthetic, data roots, downloads)")
    datasets.add_argument("--json", action="store_true")
    datasets.set_defaults(run=_datasets)

    info = commands.add_parser("data-info", help="load a dataset and print its splits and class counts")
    add_dataset_arguments(info)
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=_data_info)

    download = commands.add_parser("download", help="download a Galaxy10 HDF5 file")
    download.add_argument("variant", choices=["sdss", "decals"])
    download.add_argument("--dest", type=Path, help="folder to save into (default: the cache's downloads/)")
    download.add_argument("--url", help="another address for the same file (a mirror)")
    download.add_argument("--sha256", help="the expected checksum when --url serves another file")
    download.set_defaults(run=_download)

    runs_dir = argparse.ArgumentParser(add_help=False)
    runs_dir.add_argument("--runs-dir", type=Path, help="runs folder (default: GALAXY_LAB_RUNS_DIR or settings)")
    one_run = argparse.ArgumentParser(add_help=False, parents=[runs_dir])
    one_run.add_argument("run_id", metavar="RUN", help="run id (see galaxy-lab runs)")

    from galaxy_core.training.config import (
        DEFAULT_MODEL,
        DEFAULT_SETTINGS,
        MONITORS,
        OPTIMIZERS,
        SCHEDULES,
        VALIDATION_SOURCES,
    )

    train = commands.add_parser(
        "train",
        parents=[runs_dir],
        help="queue a training run and follow it here",
        description="Queues a run with the recommended default model and settings (change them with the options "
        "below) and follows it in this terminal: Ctrl-C asks it to stop, and it keeps what it learned. The run goes "
        "through the same queue as the app's, so it counts toward max_concurrent_runs. The run id is printed last.",
    )
    add_dataset_arguments(train, positional=False)
    train.add_argument("--model", default=DEFAULT_MODEL, help=f"registered model name (default {DEFAULT_MODEL})")
    train.add_argument("--model-options", help="builder options as JSON, e.g. '{\"blocks\": 4}'")
    train.add_argument("--epochs", type=int, help=f"maximum epochs (default {DEFAULT_SETTINGS['epochs']})")
    train.add_argument("--batch-size", type=int, help="images per step (default: the model's recipe)")
    train.add_argument("--learning-rate", type=float, help="initial learning rate (default: the model's recipe)")
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default cosine)")
    train.add_argument("--monitor", choices=MONITORS, help="what early stopping and the best checkpoint watch")
    train.add_argument("--patience", type=int, help="epochs without improvement before stopping (default 10)")
    train.add_argument("--no-early-stopping", action="store_true")
    train.add_argument("--no-class-weights", action="store_true", help="do not reweight imbalanced classes")
    train.add_argument("--no-augment", action="store_true", help="no flips, rotations, zoom or brightness")
    train.add_argument(
        "--validation",
        choices=VALIDATION_SOURCES,
        help="the dataset's val split (default), or a share held out of the training split",
    )
    train.add_argument("--validation-fraction", type=float, help="share of train held out (default 0.1)")
    train.add_argument("--seed", type=int, help="training seed: same seed and config, same curve (default 0)")
    train.add_argument("--detach", action="store_true", help="queue the run, print its id and return at once")
    train.set_defaults(run=_train)

    runs = commands.add_parser("runs", parents=[runs_dir], help="list the training runs")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(run=_runs)

    stop = commands.add_parser("stop", parents=[one_run], help="stop a queued or running run")
    stop.set_defaults(run=_stop)

    from galaxy_core.prediction import EVALUATION_SPLITS
    from galaxy_core.training import CHECKPOINTS

    which_model = argparse.ArgumentParser(add_help=False, parents=[one_run])
    which_model.add_argument("--checkpoint", choices=CHECKPOINTS, default="best", help="which model (default best)")
    with_tta = argparse.ArgumentParser(add_help=False, parents=[which_model])
    with_tta.add_argument("--tta", action="store_true", help="average over the 8 flips and quarter turns")

    evaluate = commands.add_parser(
        "evaluate",
        parents=[with_tta],
        help="evaluate a run's model on a labelled dataset",
        description="Images are preprocessed as the run's were (size, crop, channels); the dataset's class names "
        "must be the run's.",
    )
    evaluate.add_argument("--dataset", help=dataset_names_help() + " (default: the run's own dataset)")
    evaluate.add_argument(
        "--split",
        choices=EVALUATION_SPLITS,
        default="test",
        help="which images: a split, or all of the dataset's images (default test)",
    )
    evaluate.add_argument("--json", action="store_true", help="one JSON object with every figure")
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict",
        parents=[with_tta],
        help="classify image files with a run's model",
        description="Each file that cannot be used is reported with its reason; the others are still classified. "
        "Exit status 0 when at least one file was classified.",
    )
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files or zip archives")
    predict.add_argument("--json", action="store_true", help="one JSON list, an object per file")
    predict.set_defaults(run=_predict)

    from galaxy_core.export import EXPORT_FORMATS

    export = commands.add_parser("export", parents=[which_model], help="write a run's model for use elsewhere")
    export.add_argument("--format", choices=[*EXPORT_FORMATS, "all"], default="all", help="what to write (default all)")
    export.add_argument("--output", type=Path, default=Path("exports"), help="folder to write into (default exports)")
    export.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return args.run(args, settings)
    except (SettingsError, ValueError, OSError, RuntimeError, LookupError) as error:
        # DatasetError, DownloadError, RunNotFoundError and bad options land here with a message for the user.
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
