"""How far the labels let a model go: the test images that every one of several finished runs gets wrong.

Runs that differ in architecture, input size or crop and still agree on the same wrong answer point at the image,
not the model: on Galaxy Zoo's crowd votes many of those labels are doubtful. The balanced accuracy every run
loses on them is what a model would have to win back, image by image, to pass them all.

    .venv/bin/python benchmarks/shared_mistakes.py --runs-dir DIR [RUN ...] [--sheet PNG]

Without RUN ids it takes every finished run in DIR with saved test predictions; the runs must share test images.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image, ImageDraw

from galaxy_core.answers.inference import paired_predictions
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix, per_class_share, shared_mistakes
from galaxy_core.training import RunState, RunStore

TILE = 150
SHEET_COLUMNS = 10


def contact_sheet(spec: DatasetSpec, source_ids, captions: list[str], path: Path) -> None:
    """The images, a wider and sharper view than the models' (50% crop at 150 px), each with its caption."""
    dataset = create_dataset(spec.with_preprocess(image_size=TILE, crop_fraction=0.5))
    test = dataset.splits["test"]
    position = {source_id: index for index, source_id in enumerate(test.source_ids)}
    rows = -(-len(captions) // SHEET_COLUMNS)
    sheet = Image.new("RGB", (TILE * SHEET_COLUMNS, TILE * rows))
    for number, (source_id, caption) in enumerate(zip(source_ids, captions, strict=True)):
        tile = Image.fromarray(test.images[position[source_id]])
        ImageDraw.Draw(tile).text((3, 3), caption, fill=(255, 255, 0))
        sheet.paste(tile, ((number % SHEET_COLUMNS) * TILE, (number // SHEET_COLUMNS) * TILE))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run ids (default: every finished run with test predictions)")
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--sheet", type=Path, help="write the shared mistakes as a contact sheet (PNG)")
    args = parser.parse_args()
    entries = [
        summary
        for summary in RunStore(args.runs_dir).runs()
        if (summary.id in args.runs if args.runs else summary.state is RunState.FINISHED)
        and summary.run.predictions_path.is_file()
    ]
    if len(entries) < 2:
        raise SystemExit(f"error: need at least two finished runs with test predictions in {args.runs_dir}")
    try:
        saved = paired_predictions([summary.run for summary in entries])
    except ValueError as problem:
        raise SystemExit(f"error: {problem}") from problem
    labels, source_ids = saved[0].labels, saved[0].source_ids
    class_names = list(entries[0].class_names)
    for summary, predictions in zip(entries, saved, strict=True):
        matrix = confusion_matrix(labels, predictions.probabilities.argmax(axis=1), len(class_names))
        preprocess = summary.dataset.preprocess
        print(
            f"{summary.id}: {summary.model}, {preprocess.image_size} px, crop {preprocess.crop_fraction}: "
            f"test balanced accuracy {balanced_accuracy(matrix):.4f}"
        )
    shared = shared_mistakes(labels, [s.probabilities for s in saved])
    counts, supports, lost = per_class_share(labels, shared, len(class_names))
    print(f"test images every one of the {len(entries)} runs gets wrong: {len(shared)} of {len(labels)}")
    for name, count, support in zip(class_names, counts, supports, strict=True):
        print(f"  {name}: {count} of {support} ({count / max(support, 1):.1%})")
    print(f"balanced accuracy every run loses on them: {lost:.4f} (no run passes {1 - lost:.4f} without them)")
    if args.sheet:
        mean = np.mean([s.probabilities for s in saved], axis=0)
        captions = [f"{class_names[labels[i]]} -> {class_names[mean[i].argmax()]} {mean[i].max():.2f}" for i in shared]
        contact_sheet(entries[0].dataset, source_ids[shared], captions, args.sheet)
        print(f"contact sheet (labelled -> the runs' mean answer, its probability): {args.sheet}")


if __name__ == "__main__":
    main()
