"""Using trained runs: safe loading, test-time augmentation, evaluation on other datasets, the evaluate command."""

import json
from dataclasses import replace

import numpy as np
import pytest

from galaxy_core.answers.inference import (
    NotComparableError,
    comparison_warning,
    default_comparison,
    load_run_model,
    paired_predictions,
    run_answers,
    saved_predictions,
)
from galaxy_core.answers.prediction import (
    ModelLoadError,
    align_labels,
    dihedral_views,
    evaluate_model,
    load_model_file,
    predict_probabilities,
)
from galaxy_core.cli import main
from galaxy_core.data import create_dataset
from galaxy_core.evaluation import LABEL_NOISE_NOTE, balanced_accuracy_interval
from galaxy_core.training import Run
from tests.helpers import write_image_folder


def test_dihedral_views_are_the_8_flips_and_quarter_turns():
    image = np.arange(9, dtype=np.uint8).reshape(1, 3, 3, 1)
    views = dihedral_views(image)
    assert len(views) == 8 and (views[0] == image).all()
    assert len({view.tobytes() for view in views}) == 8  # an asymmetric image has 8 distinct views
    symmetric = np.ones((2, 4, 4, 3), np.uint8)
    assert all((view == symmetric).all() for view in dihedral_views(symmetric))
    with pytest.raises(ValueError, match="square"):
        dihedral_views(np.zeros((1, 3, 4, 1)))


class CornerModel:
    """Answers class 1 when the top-left pixel is the brightest corner: not rotation invariant."""

    def predict_on_batch(self, images):
        corners = np.stack([images[:, 0, 0, 0], images[:, 0, -1, 0], images[:, -1, 0, 0], images[:, -1, -1, 0]], 1)
        top_left = (corners.argmax(axis=1) == 0).astype(np.float32)
        return np.stack([1 - top_left, top_left], axis=1)


def test_tta_averages_the_views():
    image = np.zeros((1, 4, 4, 1), np.float32)
    image[0, 0, 0, 0] = 1
    assert predict_probabilities(CornerModel(), image).tolist() == [[0.0, 1.0]]
    # The bright pixel sits top-left in 2 of the 8 views (the image itself and its transpose).
    np.testing.assert_allclose(predict_probabilities(CornerModel(), image, tta=True), [[0.75, 0.25]])


def test_labels_are_matched_by_class_name():
    assert align_labels(np.array([0, 1, 2]), ["b", "c", "a"], ["a", "b", "c"]).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="are not the model's"):
        align_labels(np.array([0]), ["a", "x"], ["a", "b"])


def test_the_worker_saves_plain_and_tta_predictions(finished_run):
    plain, averaged = saved_predictions(finished_run), saved_predictions(finished_run, tta=True)
    assert plain.probabilities.shape == averaged.probabilities.shape == (len(plain.labels), 3)
    evaluation = finished_run.evaluation()
    assert set(evaluation["tta"]) >= {"accuracy", "balanced_accuracy", "per_class", "confusion_matrix"}
    assert finished_run.status()["test_balanced_accuracy_tta"] == evaluation["tta"]["balanced_accuracy"]


def test_paired_predictions_need_the_same_test_images(finished_run):
    copy = Run(finished_run.path.with_name(finished_run.id + "-copy"))
    copy.path.mkdir()
    (copy.path / finished_run.predictions_path.name).write_bytes(finished_run.predictions_path.read_bytes())
    first, second = paired_predictions([finished_run, copy])
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    with np.load(copy.predictions_path) as saved:
        arrays = dict(saved)
    np.savez(copy.predictions_path, **{**arrays, "source_ids": arrays["source_ids"][::-1]})
    with pytest.raises(ValueError, match="tested on different images"):
        paired_predictions([finished_run, copy])
    copy.predictions_path.unlink()
    with pytest.raises(ValueError, match="saved no test predictions"):
        paired_predictions([finished_run, copy])


def test_evaluating_the_best_model_reproduces_the_saved_figures(finished_run):
    dataset = create_dataset(finished_run.summary().dataset)
    result = evaluate_model(load_run_model(finished_run), dataset, ["edge", "smooth", "spiral"], "test")
    np.testing.assert_allclose(result.probabilities, saved_predictions(finished_run).probabilities, atol=1e-5)
    assert result.summary["confusion_matrix"] == finished_run.evaluation()["confusion_matrix"]
    everything = evaluate_model(load_run_model(finished_run, "final"), dataset, ["edge", "smooth", "spiral"], "all")
    assert len(everything.labels) == 90


def test_model_files_that_cannot_load_are_clear_errors(finished_run, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_file(tmp_path / "missing.keras")
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        load_model_file(damaged)
    finished_run.final_model_path.unlink()
    with pytest.raises(ModelLoadError, match="has no final model: it did not reach its last epoch"):
        load_run_model(finished_run, "final")
    assert finished_run.model_path("best") == finished_run.best_model_path
    finished_run.best_model_path.unlink()
    with pytest.raises(ModelLoadError, match="kept no model: it ended before its first epoch did"):
        load_run_model(finished_run)


def test_evaluate_command_prints_figures_and_json(finished_run, capsys):
    assert main(["evaluate", finished_run.id]) == 0
    out = capsys.readouterr().out
    assert "balanced accuracy" in out and "confusion matrix (rows: true class" in out and "spiral" in out
    assert out.rstrip().endswith(LABEL_NOISE_NOTE)  # wherever an accuracy is shown
    saved = saved_predictions(finished_run)  # the same model on the same images
    low, high = balanced_accuracy_interval(saved.labels, saved.probabilities.argmax(axis=1))
    assert f"(95% bootstrap interval {low:.4f} to {high:.4f})" in out
    assert main(["evaluate", finished_run.id, "--json", "--tta"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) >= {"accuracy", "balanced_accuracy", "per_class", "confusion_matrix", "class_names"}
    assert sum(map(sum, summary["confusion_matrix"])) == len(saved_predictions(finished_run).labels)


def test_evaluate_command_on_a_folder_without_splits(finished_run, isolated_settings, capsys):
    write_image_folder(isolated_settings["data"] / "mine", {"edge": 3, "smooth": 4, "spiral": 2})
    assert main(["evaluate", finished_run.id, "--dataset", "mine", "--split", "all", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [row["support"] for row in summary["per_class"].values()] == [3, 4, 2]
    write_image_folder(isolated_settings["data"] / "other", {"cats": 3, "dogs": 3})
    assert main(["evaluate", finished_run.id, "--dataset", "other", "--split", "all"]) == 2
    assert "are not the model's" in capsys.readouterr().err
    assert main(["evaluate", "no-such-run"]) == 2


def test_run_answers_use_saved_predictions_for_the_same_images_and_predict_otherwise(finished_run):
    dataset = create_dataset(finished_run.summary().dataset)
    loads, calls = [], []

    def load_model():
        loads.append(1)
        return load_run_model(finished_run)

    def predict(images):
        calls.append(len(images))
        return predict_probabilities(load_model(), images)

    saved = run_answers(finished_run, dataset, load_model=load_model, predict=predict)
    assert calls == [] and loads == []
    assert np.array_equal(saved.probabilities, saved_predictions(finished_run).probabilities)
    assert saved.model.output_shape[-1] == len(saved.class_names) and loads == [1]  # loaded when asked for
    final = run_answers(finished_run, dataset, checkpoint="final", load_model=load_model, predict=predict)
    assert calls == [len(dataset.splits["test"])] and final.probabilities.shape == saved.probabilities.shape
    true, predicted = saved.class_names[saved.labels[0]], saved.class_names[saved.predictions[0]]
    assert saved.caption(0).startswith(f"{true} → {predicted} ")


def test_run_answers_need_no_model_file_until_the_model_is_asked_for(finished_run):
    dataset = create_dataset(finished_run.summary().dataset)
    finished_run.best_model_path.write_bytes(b"garbage")
    answers = run_answers(finished_run, dataset)
    assert np.array_equal(answers.probabilities, saved_predictions(finished_run).probabilities)
    with pytest.raises(ModelLoadError):
        _ = answers.model
    finished_run.final_model_path.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError):  # the final model saved no predictions: it has to predict
        run_answers(finished_run, dataset, checkpoint="final")


def test_runs_with_other_classes_are_refused_and_other_datasets_flagged(finished_run):
    summary = finished_run.summary()
    assert comparison_warning([summary, summary]) is None
    other_dataset = replace(summary, dataset=summary.dataset.with_preprocess(image_size=48))
    assert "different datasets or preprocessing" in comparison_warning([summary, other_dataset])
    with pytest.raises(NotComparableError, match="different classes"):
        comparison_warning([summary, replace(summary, class_names=("cats", "dogs", "birds"))])


def test_compare_opens_on_the_two_newest_runs_tested_on_the_same_images(finished_run):
    summary = finished_run.summary()

    def on(dataset) -> object:
        return replace(summary, dataset=dataset)

    spec = summary.dataset
    newest, other_images = on(spec.with_options(seed=9)), on(spec)
    same_images_other_size, oldest = on(spec.with_preprocess(image_size=48)), on(spec)
    pair = default_comparison([newest, other_images, same_images_other_size, oldest])
    assert pair == [other_images, same_images_other_size]  # the newest has no partner tested on its images
    assert default_comparison([newest, other_images]) == [newest, other_images]  # none alike: the two newest
