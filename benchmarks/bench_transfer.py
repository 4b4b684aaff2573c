"""Transfer from a trained run on gz1-3class, through the lab's own procedure, in one process, one run after another.

1. Speed: a Recommended run from scratch (the base), the Quick recipe from scratch, then a frozen-base head from the
   base (its features computed: a cold feature cache) and the same head again (a warm cache). The heads' wall times
   as shares of Quick's (goal: <= 10%), and each test balanced accuracy with its 95% bootstrap interval and the
   paired interval of its difference from Quick's.
2. Few labels: the training split cut in two stratified halves, A and B. A gz1 base (the Recommended recipe) trains on
   A alone; every few-label run trains on a share of B alone (5%, 20%, 100% by default): from scratch (Recommended),
   from the gz1 base, from a base trained on synthetic galaxies (Recommended, 3000 images), frozen, and from that
   synthetic base fine-tuned whole (from its first convolution on, 5 epochs at 1e-4 after the head). Each point
   with its interval, and each transfer's paired difference from scratch at the same share (goal: at 5%, from a
   run >= 5 points better than from scratch).

The cache folder is this benchmark's own (a temporary folder): each dataset is decoded before its first run (left
out of the times), and the first head from each base computes its features. Figures are test balanced accuracy
of each run's best checkpoint, as the run reports them; the Galaxy Zoo labels are noisy (about 9 points of balanced
accuracy are doubtful labels), so small differences say little.

    .venv/bin/python benchmarks/bench_transfer.py [--data PATH] [--fractions 0.05 0.2 1.0] [--skip speed|few]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.data.dataset import stratified_split
from galaxy_core.evaluation import balanced_accuracy_interval
from galaxy_core.settings import load_settings
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import TrainConfig, preset_config
from galaxy_core.training.kinds.transfer import transfer_config

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
SYNTHETIC = DatasetSpec.of("synthetic", num_images=3000)
SYNTHETIC_FINE_TUNE_FROM = "stem_conv"  # inception_small's first convolution: the whole network fine-tuned


class Bench:
    """Runs trained one after another in one runs folder, each timed and its test answers kept."""

    def __init__(self, runs_dir: Path):
        self.store = RunStore(runs_dir)
        self.warm: set = set()

    def train(self, name: str, config: TrainConfig) -> dict:
        if config.dataset not in self.warm:
            started = time.perf_counter()
            create_dataset(config.dataset, cache_dir=load_settings().cache_dir)
            print(
                f"  (decoded {config.dataset.source} at {config.input_shape[0]} px: "
                f"{time.perf_counter() - started:.0f} s, left out of the times)",
                flush=True,
            )
            self.warm.add(config.dataset)
        run = new_run(self.store, config, MACHINE_TEACHER)
        started = time.perf_counter()
        state = train_in_this_process(run)
        seconds = time.perf_counter() - started
        summary = run.summary()
        if state != "finished":
            raise SystemExit(f"error: {name} ended {state}: {summary.message}")
        predictions = run.predictions()
        result = {
            "name": name,
            "run": summary,
            "seconds": seconds,
            "train_images": (run.progress().get("dataset_sizes") or {}).get("train"),
            "labels": predictions["labels"],
            "predicted": predictions["probabilities"].argmax(axis=1),
            "test": summary.test_balanced_accuracy,
        }
        low, high = balanced_accuracy_interval(result["labels"], result["predicted"])
        print(
            f"  {name}: {seconds:.0f} s, {summary.epochs_done} epochs, {result['train_images']} training images, "
            f"test balanced accuracy {result['test']:.4f} ({low:.3f} to {high:.3f})",
            flush=True,
        )
        return result


def paired(result: dict, baseline: dict) -> str:
    low, high = balanced_accuracy_interval(result["labels"], result["predicted"], baseline["predicted"])
    return f"{result['test'] - baseline['test']:+.3f} ({low:+.3f} to {high:+.3f})"


def speed(bench: Bench, spec: DatasetSpec) -> None:
    print("\n## 1. A frozen-base head from a Recommended run vs the Quick recipe from scratch", flush=True)
    base = bench.train("Recommended from scratch (the base)", preset_config(spec, "recommended"))
    quick = bench.train("Quick from scratch", preset_config(spec, "quick"))
    cold = bench.train("head on the frozen base, features computed", transfer_config(base["run"], spec))
    warm = bench.train("head on the frozen base, features cached", transfer_config(base["run"], spec))
    print("\n| run | wall time | / Quick's | test balanced accuracy | minus Quick's (paired 95% interval) |")
    print("|---|---|---|---|---|")
    for result in (quick, base, cold, warm):
        difference = "" if result is quick else paired(result, quick)
        print(
            f"| {result['name']} | {result['seconds']:.0f} s | {result['seconds'] / quick['seconds']:.0%} | "
            f"{interval_text(result)} | {difference} |"
        )


def halves(spec: DatasetSpec) -> tuple[dict, dict]:
    """label_changes that leave out half B (for the base) and half A (for the few-label runs) of the training split,
    stratified with seed 0."""
    train = create_dataset(spec, cache_dir=load_settings().cache_dir).splits["train"]
    half_a, half_b, _ = stratified_split(train.labels, (0.5, 0.0), seed=0)
    ids = train.source_ids.astype(str)
    return {ids[i]: None for i in half_b}, {ids[i]: None for i in half_a}


def few_labels(bench: Bench, spec: DatasetSpec, fractions: list[float]) -> None:
    print(
        "\n## 2. Few labels: from scratch, from a gz1 run (on the other half), from a synthetic-galaxy run", flush=True
    )
    size = preset_config(spec, "recommended").dataset
    without_b, without_a = halves(size)
    gz_base = bench.train(
        "gz1 base on half A",
        preset_config(spec, "recommended", label_changes=without_b, label_changes_from="half A only"),
    )
    synthetic_base = bench.train("synthetic base", preset_config(SYNTHETIC, "recommended"))
    only_b = {"label_changes": without_a, "label_changes_from": "half B only"}
    starts = {
        "from the gz1 run": lambda **labels: transfer_config(gz_base["run"], size, **labels),
        "from the synthetic run": lambda **labels: transfer_config(synthetic_base["run"], size, **labels),
        "from the synthetic run, fine-tuned": lambda **labels: transfer_config(
            synthetic_base["run"], size, unfreeze_from=SYNTHETIC_FINE_TUNE_FROM, **labels
        ),
    }
    rows = []
    for fraction in fractions:
        labels = {**only_b, **({"train_fraction": fraction} if fraction < 1 else {})}
        scratch = bench.train(f"{fraction:.0%} of B, from scratch", preset_config(spec, "recommended", **labels))
        rows.append(
            (
                fraction,
                scratch,
                [bench.train(f"{fraction:.0%} of B, {name}", make(**labels)) for name, make in starts.items()],
            )
        )
    print(
        "\n| labels (of half B) | training images | from scratch | "
        + " | ".join(f"{name} | minus scratch" for name in starts)
        + " |"
    )
    print("|---|---|---|" + "---|---|" * len(starts))
    for fraction, scratch, transfers in rows:
        cells = [interval_text(scratch)] + [f"{interval_text(t)} | {paired(t, scratch)}" for t in transfers]
        print(f"| {fraction:.0%} | {scratch['train_images']} | " + " | ".join(cells) + " |")


def interval_text(result: dict) -> str:
    low, high = balanced_accuracy_interval(result["labels"], result["predicted"])
    return f"{result['test']:.3f} ({low:.3f} to {high:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--fractions", type=float, nargs="*", default=[0.05, 0.2, 1.0])
    parser.add_argument("--skip", choices=["speed", "few"], action="append", default=[])
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to gz1-3class")
    spec = DatasetSpec.of("folder", path=str(args.data)).with_preprocess(crop_fraction=0.4)
    print(f"gz1-3class ({args.data}), crop 0.4, {os.cpu_count()} CPU cores", flush=True)
    with tempfile.TemporaryDirectory() as cache_dir, tempfile.TemporaryDirectory() as runs_dir:
        os.environ["GALAXY_LAB_CACHE_DIR"] = cache_dir  # a cold feature cache (and datasets decoded afresh)
        bench = Bench(Path(runs_dir))
        if "speed" not in args.skip:
            speed(bench, spec)
        if "few" not in args.skip:
            few_labels(bench, spec, args.fractions)
    print("\nThe Galaxy Zoo labels are noisy: about 9 points of balanced accuracy are doubtful labels.")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
