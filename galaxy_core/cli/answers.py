"""Answers from a run's model: `evaluate`, `predict` and `export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from galaxy_core.answers.export import EXPORT_FORMATS, export_run
from galaxy_core.answers.inference import load_run_model, run_class_names, run_dataset_spec
from galaxy_core.answers.prediction import EVALUATION_SPLITS, evaluate_model
from galaxy_core.answers.uploads import ImageInput, UploadLimits, predict_images, prediction_rows, read_upload_paths
from galaxy_core.cli.common import WHICH_MODEL, WITH_TTA, interval_words, store_for, terminal_progress
from galaxy_core.data import create_dataset, dataset_names_help, spec_from_name
from galaxy_core.evaluation import LABEL_NOISE_NOTE, balanced_accuracy_interval


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
    run = store_for(args, settings).get(args.run_id)
    spec = run_dataset_spec(run, spec_from_name(args.dataset, settings) if args.dataset else None)
    dataset = create_dataset(
        spec, cache_dir=settings.cache_dir, progress=terminal_progress, memory_limit_mb=settings.dataset_memory_mb
    )
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
    print(f"balanced accuracy  {summary['balanced_accuracy']:.4f}{interval_words(interval)}")
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
    run = store_for(args, settings).get(args.run_id)
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
    run = store_for(args, settings).get(args.run_id)
    formats = EXPORT_FORMATS if args.format == "all" else (args.format,)
    for export_format in formats:
        print(export_run(run, export_format, args.output, args.checkpoint))
    return 0
