"""Label review on gz1-3class: does training on reviewed labels help, and how much of the test split is doubtful?

In this one process, through the lab's own training procedure:
1. a label review of the training split (k folds of the quick recipe, the Train page's "Review the labels"), timed
   against its expected duration;
2. the review's suggestions accepted automatically where the fold models give the suggested class at least
   `--threshold` probability (no human looked: a teacher's review would differ);
3. the recommended default trained on the original training split, then on the reviewed one (accepted suggestions
   relabelled, and left out), each judged on the untouched validation and test splits;
4. the share of the test split whose label the review's method doubts: confident learning on the original default
   run's test predictions (out-of-sample: it never trained on the test split).

    .venv/bin/python benchmarks/bench_label_review.py [--folds 5] [--threshold 0.8] [--data PATH]

The test labels are the volunteers' too: a model that learned the "right" class of a doubtful galaxy can score
lower on them. Read the validation and test figures together.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from galaxy_core.answers.review import ACTIONS, load_review, record_review_decisions
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.evaluation import label_issues
from galaxy_core.settings import load_settings
from galaxy_core.training import RunStore, estimate
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import preset_config
from galaxy_core.training.kinds.label_review import label_review_config

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"


def train(store: RunStore, config, cache_dir):
    """Train `config` here (its dataset decoded first, so the clock counts training only); its summary and
    minutes."""
    dataset = create_dataset(config.dataset, cache_dir=cache_dir)
    run = new_run(store, config, MACHINE_TEACHER)
    started = time.perf_counter()
    state = train_in_this_process(run, dataset)
    minutes = (time.perf_counter() - started) / 60
    summary = run.summary()
    if state != "finished":
        raise SystemExit(f"run {run.id} ended {state}: {summary.message}\n{summary.traceback or ''}")
    return summary, minutes, dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--data", type=Path, default=GZ1)
    args = parser.parse_args()
    settings = load_settings()
    spec = DatasetSpec.of("folder", path=str(args.data.resolve())).with_preprocess(crop_fraction=0.4)
    store = RunStore(tempfile.mkdtemp(prefix="bench-review-"))
    print(f"runs in {store.root}; {os.cpu_count()} cores")

    review_config = label_review_config(spec, args.folds)
    review_data = create_dataset(review_config.dataset, cache_dir=settings.cache_dir)
    sizes = {name: len(split) for name, split in review_data.splits.items()}
    throughput = estimate.measure_throughput(review_config)
    expected = estimate.expected_seconds(review_config, throughput, sizes) / 60
    summary, minutes, _ = train(store, review_config, settings.cache_dir)
    review = load_review(summary, MACHINE_TEACHER)
    print(
        f"review: {args.folds} folds of {review_config.model} at {review_config.input_shape[0]} px, "
        f"{review_config.epochs} epochs each: {minutes:.2f} min (expected {expected:.2f} min, "
        f"error {expected / minutes - 1:+.0%})"
    )
    print(f"  doubted: {len(review.doubts)} of {review.training_images} training labels ({review.doubted_share:.1%})")
    pairs: dict[str, int] = {}
    for doubt in review.doubts:
        pair = f"{review.class_names[doubt.given]} -> {review.class_names[doubt.suggested]}"
        pairs[pair] = pairs.get(pair, 0) + 1
    print("  given -> suggested: " + ", ".join(f"{pair} {n}" for pair, n in sorted(pairs.items())))
    record_review_decisions(summary.run, review.confident_suggestions(args.threshold), MACHINE_TEACHER)
    review = load_review(summary.run.summary(), MACHINE_TEACHER)
    print(f"  accepted automatically (suggested class p >= {args.threshold}): {len(review.accepted())}")

    rows = []
    original, original_minutes, dataset = train(store, preset_config(spec), settings.cache_dir)
    rows.append(("original labels", original, original_minutes))
    for action in ACTIONS:
        config = preset_config(
            spec, label_changes=review.label_changes(action), label_changes_from=f"benchmark, {ACTIONS[action]}"
        )
        reviewed, reviewed_minutes, _ = train(store, config, settings.cache_dir)
        rows.append((f"reviewed, accepted {ACTIONS[action]}", reviewed, reviewed_minutes))
    print("\nrecommended default (48 px, 15 epochs), each on the untouched val and test splits:")
    print(f"{'training labels':48} {'val bal.':>9} {'test bal.':>9} {'test TTA':>9} {'train imgs':>10} {'min':>6}")
    for name, result, result_minutes in rows:
        print(
            f"{name:48} {result.best_val_balanced_accuracy:9.4f} {result.test_balanced_accuracy:9.4f} "
            f"{result.test_balanced_accuracy_tta:9.4f} {result.run.progress()['dataset_sizes']['train']:10d} "
            f"{result_minutes:6.2f}"
        )

    predictions = original.run.predictions()
    flagged = label_issues(predictions["labels"], predictions["probabilities"])
    test = dataset.splits["test"]
    print(
        f"\ntest split: {len(flagged)} of {len(test)} labels ({len(flagged) / len(test):.1%}) doubted by confident "
        "learning on the original default's test predictions"
    )
    per_class = np.bincount(predictions["labels"][flagged], minlength=dataset.num_classes)
    print("  by given class: " + ", ".join(f"{n} {c}" for n, c in zip(dataset.class_names, per_class, strict=True)))


if __name__ == "__main__":
    main()
