"""Ensembles on gz1-3class, through the lab's own procedure, in one process.

1. Five Recommended runs (seeds 0-4) and their ensemble (equal weights, and weighted by validation): each member's
   and the ensemble's test balanced accuracy with its 95% bootstrap interval, the paired interval of the ensemble
   minus its best member and minus its median member (a paired interval needs one set of answers: the member whose
   figure is the median stands for "a member"), its gap to the mean of the members' figures, and the ensemble's
   prediction time on the test split against one member's (goal: the ensemble >= 2 points above the mean member,
   its paired interval above 0).
2. A label review (the lab's default: 5 folds of the Quick recipe) whose fold models answer as an ensemble as soon
   as it ends, against one Recommended run (seed 0), the same way.
3. One request: the Recommended recipe's 5 seeds trained as one run (kind "seed_ensemble"): each of its networks
   against the separate run of the same seed, its ensemble against the separate runs' ensemble, and its time
   against the separate runs' (times from the runs' own records; a reused run's were measured when it trained).
4. Varied members: the Recommended recipe (48 px, 15 epochs, weight averaging) with other architectures in place of
   its Small Inception (Practice 1's plain convolutions, the small ResNet, the custom CNN), and the ensemble of
   the four architectures (seed 0 each) against its members, as in 1: do members that differ in how they see
   an image disagree where the seeds of one network agree?

gz1-3class at the benchmarks' crop (0.4). Members are kept in `--runs-dir` (default: benchmarks/.runs/ensemble, not
in git), and a finished run with the same title is reused: the script can be run again to make its ensembles
without training the members twice. Figures are test balanced accuracy as each run reports it; the Galaxy Zoo
labels are noisy (about 9 points of balanced accuracy are doubtful labels), so small differences say little.

    .venv/bin/python benchmarks/bench_ensemble.py [--data PATH] [--runs-dir PATH] [--members 5]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from galaxy_core.answers.prediction import load_model_file, predict_in_batches
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.evaluation import balanced_accuracy, balanced_accuracy_interval, confusion_matrix
from galaxy_core.settings import load_settings
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import TrainConfig, preset_config
from galaxy_core.training.kinds.label_review import label_review_config
from galaxy_core.training.kinds.seed_ensemble import networks_config

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-3class"
RUNS = Path(__file__).resolve().parent / ".runs" / "ensemble"
VARIED_MODELS = ("practice1", "resnet_small", "custom_cnn")  # beside the Recommended recipe's inception_small


def finished_run(store: RunStore, title: str, config: TrainConfig):
    """The finished run titled `title` in `store`, trained now when there is none."""
    for summary in store.runs():
        if summary.title == title and summary.state.value == "finished":
            print(f"  {title}: reused {summary.id}", flush=True)
            return summary.run
    run = new_run(store, config, MACHINE_TEACHER)
    run.set_title(title, by="benchmark")
    started = time.perf_counter()
    state = train_in_this_process(run)
    if state != "finished":
        raise SystemExit(f"error: {title} ended {state}: {run.summary().message}")
    print(f"  {title}: trained {run.id} in {time.perf_counter() - started:.0f} s", flush=True)
    return run


def answers(run) -> tuple[np.ndarray, np.ndarray]:
    saved = run.predictions()
    return saved["labels"], saved["probabilities"].argmax(axis=1)


def score(labels: np.ndarray, predicted: np.ndarray) -> float:
    return balanced_accuracy(confusion_matrix(labels, predicted, int(labels.max()) + 1))


def figure(run) -> str:
    labels, predicted = answers(run)
    low, high = balanced_accuracy_interval(labels, predicted)
    return f"{score(labels, predicted):.4f} ({low:.3f} to {high:.3f})"


def paired(run, other_predicted: np.ndarray) -> str:
    labels, predicted = answers(run)
    difference = score(labels, predicted) - score(labels, other_predicted)
    low, high = balanced_accuracy_interval(labels, predicted, other_predicted)
    return f"{difference:+.4f} ({low:+.3f} to {high:+.3f})"


def median_member_predictions(members: list) -> np.ndarray:
    """The answers of the member whose figure is the members' median: "a member" in a paired interval (the mean of
    their figures is printed beside it)."""
    scores = [score(*answers(run)) for run in members]
    return answers(members[int(np.argsort(scores)[len(scores) // 2])])[1]


def prediction_seconds(run) -> tuple[float, int]:
    """(seconds to predict the run's test images with its best model, how many images)."""
    images = create_dataset(run.summary().dataset, cache_dir=load_settings().cache_dir).splits["test"].images
    model = load_model_file(run.best_model_path)
    predict_in_batches(model, images[:8])  # the first call builds the prediction function
    started = time.perf_counter()
    predict_in_batches(model, images)
    return time.perf_counter() - started, len(images)


def report(title: str, ensembles: list, members: list) -> None:
    scores = [score(*answers(run)) for run in members]
    best = members[int(np.argmax(scores))]
    median = median_member_predictions(members)
    print(f"\n## {title}\n")
    print(
        "| model | test balanced accuracy (95% interval) | minus best member (paired) | minus median member (paired) |"
    )
    print("|---|---|---|---|")
    for run in members:
        print(f"| {run.summary().name} | {figure(run)} | | |")
    for run in ensembles:
        print(f"| {run.summary().name} | {figure(run)} | {paired(run, answers(best)[1])} | {paired(run, median)} |")
    print(f"\nmean member {np.mean(scores):.4f}; best member {max(scores):.4f}")
    if len(members) > 1:
        answered = np.stack([answers(run)[1] for run in members])
        same = float(np.mean(np.all(answered == answered[0], axis=0)))
        print(f"all {len(members)} members give the same answer on {same:.1%} of the test galaxies")
    for run in ensembles:
        mean_gap = score(*answers(run)) - np.mean(scores)
        print(f"{run.summary().name}: {mean_gap * 100:+.1f} points above the mean member")
    (one, count), (together, _) = prediction_seconds(members[0]), prediction_seconds(ensembles[0])
    print(
        f"prediction of the {count} test images: {members[0].summary().name} {one:.2f} s, "
        f"{ensembles[0].summary().name} {together:.2f} s ({together / one:.1f}x)"
    )


def run_minutes(run) -> float:
    summary = run.summary()
    return (summary.finished - summary.started) / 60


def one_request(run, members: list, separate_ensemble) -> None:
    from galaxy_core.answers.members import members_view

    view = members_view(run.summary())
    print(f"\n## One request: {len(members)} seeds of the Recommended recipe trained as one run\n")
    print("| seed | its network in the one run | the separate run of that seed |")
    print("|---|---|---|")
    for name, probabilities, member in zip(view.names, view.probabilities, members, strict=True):
        print(f"| {name} | {score(view.labels, probabilities.argmax(axis=1)):.4f} | {score(*answers(member)):.4f} |")
    print(f"| ensemble | {figure(run)} | {figure(separate_ensemble)} |")
    print(
        f"\none request {run_minutes(run):.1f} min ({run.summary().epochs_done} epochs); the separate runs "
        f"{sum(run_minutes(member) for member in members):.1f} min together "
        f"({sum(member.summary().epochs_done for member in members)} epochs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GZ1)
    parser.add_argument("--runs-dir", type=Path, default=RUNS)
    parser.add_argument("--members", type=int, default=5)
    args = parser.parse_args()
    spec = DatasetSpec.of("folder", path=str(args.data.resolve())).with_preprocess(crop_fraction=0.4)
    print(f"gz1-3class ({args.data}), crop 0.4, {os.cpu_count()} CPU cores", flush=True)
    store = RunStore(args.runs_dir)
    for config in (preset_config(spec), label_review_config(spec)):  # decoded before any run, out of its time
        create_dataset(config.dataset, cache_dir=load_settings().cache_dir)
    print(f"## Members ({args.runs_dir})", flush=True)
    members = [
        finished_run(store, f"Recommended seed {seed}", preset_config(spec, seed=seed)) for seed in range(args.members)
    ]
    from galaxy_core.training.kinds.ensemble import ensemble_config

    review = finished_run(store, "label review (default)", label_review_config(spec))
    summaries = [run.summary() for run in members]
    equal = finished_run(store, "ensemble of the Recommended runs", ensemble_config(summaries))
    weighted = finished_run(
        store, "ensemble of the Recommended runs, by validation", ensemble_config(summaries, weighting="validation")
    )
    report(f"{args.members} Recommended runs and their ensemble", [equal, weighted], members)
    report("A label review's fold models as an ensemble vs one Recommended run", [review], members[:1])
    seeds = preset_config(spec, **networks_config(args.members))
    one_run = finished_run(store, f"Recommended x {args.members} seeds as one run", seeds)
    one_request(one_run, members, equal)
    varied = members[:1] + [
        finished_run(store, f"Recommended recipe, {model}", replace(preset_config(spec), model=model, model_options={}))
        for model in VARIED_MODELS
    ]
    together = finished_run(store, "ensemble of four architectures", ensemble_config([run.summary() for run in varied]))
    report("Varied members: four architectures, one recipe", [together], varied)


if __name__ == "__main__":
    main()
