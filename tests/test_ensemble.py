"""Ensembles: the averaging is right (hand-computed), an ensemble run answers as its members' mean and keeps each
member's answers, members that cannot answer together are refused with why, a label review's fold models answer
as one, a deleted member leaves the ensemble whole, and the exported ensemble answers as the lab's."""

import json
import zipfile

import numpy as np
import pytest

from galaxy_core.answers.export import export_run
from galaxy_core.answers.members import member_whereabouts, members_view
from galaxy_core.answers.prediction import load_model_file, predict_probabilities
from galaxy_core.classroom.people import MACHINE_TEACHER, User
from galaxy_core.data import create_dataset
from galaxy_core.errors import InvalidInputError
from galaxy_core.models.ensemble import average_models, ensemble_members
from galaxy_core.training import RunStore
from galaxy_core.training.client import ServiceClient, new_run, train_in_this_process
from galaxy_core.training.kinds import describe_run_model
from galaxy_core.training.kinds.ensemble import ensemble_config
from galaxy_core.training.records import short_run_id
from tests.helpers import give_run, rewrite_status, saved_balanced_accuracy

IMAGES = np.zeros((3, 8, 8, 3), dtype=np.float32)


def constant_model(probabilities, shape=(8, 8, 3)):
    """A network that answers `probabilities` whatever the image (a zero kernel, the logs as its bias)."""
    import keras

    image = keras.Input(shape)
    logits = keras.layers.Dense(
        len(probabilities),
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(np.log(probabilities)),
    )(keras.layers.Flatten()(image))
    return keras.Model(image, keras.layers.Softmax()(logits))


def test_an_ensemble_answers_its_members_weighted_mean(tmp_path):
    first, second = constant_model([0.25, 0.75]), constant_model([0.5, 0.5])
    np.testing.assert_allclose(average_models([first, second]).predict_on_batch(IMAGES), [[0.375, 0.625]] * 3, 1e-6)
    np.testing.assert_allclose(average_models([first]).predict_on_batch(IMAGES), [[0.25, 0.75]] * 3, 1e-6)
    weighted = average_models([first, second], [3, 1])  # 0.75 * first + 0.25 * second
    weighted.save(tmp_path / "ensemble.keras")
    reloaded = load_model_file(tmp_path / "ensemble.keras")  # in safe mode, as the lab loads every model
    np.testing.assert_allclose(reloaded.predict_on_batch(IMAGES), [[0.3125, 0.6875]] * 3, 1e-6)
    assert [(member.name, weight) for member, weight in ensemble_members(reloaded)] == [
        ("member_1", 0.75),
        ("member_2", 0.25),
    ]
    assert ensemble_members(first) == []


@pytest.mark.parametrize(
    ("members", "weights", "reason"),
    [
        ([constant_model([0.5, 0.5]), constant_model([0.2, 0.3, 0.5])], None, "answers with 3 classes, the first 2"),
        ([constant_model([0.5, 0.5]), constant_model([0.5, 0.5], (9, 9, 3))], None, "takes images of"),
        ([constant_model([0.5, 0.5])] * 2, [1, -1], "weights must be numbers >= 0"),
        ([constant_model([0.5, 0.5])] * 2, [0, 0], "at least one member needs a weight above 0"),
        ([], None, "at least one member"),
    ],
    ids=["classes", "input size", "negative weight", "all zero", "none"],
)
def test_members_that_cannot_answer_together_are_refused(members, weights, reason):
    with pytest.raises(InvalidInputError, match=reason):
        average_models(members, weights)


def test_an_ensemble_run_answers_as_its_members_mean_and_keeps_each_ones_answers(
    isolated_settings, finished_run, finished_transfer
):
    store = RunStore(isolated_settings["runs"])
    members = [finished_run.summary(), finished_transfer.summary()]
    run = new_run(store, ensemble_config(members), MACHINE_TEACHER)
    assert describe_run_model(run.config()) == "ensemble of 2 runs"
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    saved = run.predictions()
    own = [member.run.predictions()["probabilities"] for member in members]
    np.testing.assert_allclose(saved["probabilities"], (own[0] + own[1]) / 2, atol=1e-5)
    assert run.summary().test_balanced_accuracy == pytest.approx(saved_balanced_accuracy(run))
    test_images = create_dataset(run.summary().dataset).splits["test"].images
    whole = load_model_file(run.best_model_path)
    np.testing.assert_allclose(predict_probabilities(whole, test_images), saved["probabilities"], atol=1e-5)

    view = members_view(run.summary())
    assert view.names == [f"run {short_run_id(member.id)}" for member in members]
    for score, member in zip(view.member_scores(), members, strict=True):
        assert score == pytest.approx(member.test_balanced_accuracy)
    assert view.scores_without_each() == pytest.approx(view.member_scores()[::-1])  # one of two left: the other
    votes = np.stack([probabilities.argmax(axis=1) for probabilities in own])
    assert set(view.split_images()) == set(np.flatnonzero(votes[0] != votes[1]))
    agreed, split = view.score_by_agreement()["all agree"], view.score_by_agreement()["split"]
    assert agreed[0] + split[0] == len(saved["labels"])


def test_members_weighted_by_validation_take_their_figures_as_weights(
    isolated_settings, finished_run, finished_transfer
):
    members = [finished_run.summary(), finished_transfer.summary()]
    config = ensemble_config(members, weighting="validation")
    assert config.options.member_weights == tuple(member.best_val_balanced_accuracy for member in members)
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    figures = np.array(config.options.member_weights)
    own = [member.run.predictions()["probabilities"] for member in members]
    expected = (figures[0] * own[0] + figures[1] * own[1]) / figures.sum()
    np.testing.assert_allclose(run.predictions()["probabilities"], expected, atol=1e-5)


def spoil_classes(run):
    run.report_progress(class_names=["bar", "ring", "smooth"])


def spoil_size(run):
    config = json.loads((run.path / "config.json").read_text())
    config["dataset"]["image_size"] = 40
    (run.path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda run: rewrite_status(run, "running"), "still running"),
        (lambda run: RunStore(run.path.parent).trash(run), "restored from the trash"),
        (lambda run: [run.best_model_path.unlink(), run.final_model_path.unlink()], "kept no model"),
        (spoil_classes, "members answer with the same classes"),
        (spoil_size, "takes 40 px images"),
    ],
    ids=["training", "deleted", "no model", "other classes", "other size"],
)
def test_a_member_that_cannot_be_one_is_refused_with_why(
    isolated_settings, finished_run, finished_transfer, spoil, reason
):
    config = ensemble_config([finished_transfer.summary(), finished_run.summary()])
    spoil(finished_run)
    with pytest.raises(InvalidInputError, match=reason):
        new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert finished_transfer.id in RunStore(isolated_settings["runs"]).run_ids()  # and nothing else was queued
    assert len(RunStore(isolated_settings["runs"]).run_ids()) <= 2


def test_a_label_review_or_an_ensemble_is_no_member(isolated_settings, finished_run, finished_review):
    store = RunStore(isolated_settings["runs"])
    with pytest.raises(InvalidInputError, match="label review, whose fold models answer as one already"):
        new_run(store, ensemble_config([finished_run.summary(), finished_review.summary()]), MACHINE_TEACHER)
    ensemble = new_run(store, ensemble_config([finished_run.summary()]), MACHINE_TEACHER)
    assert train_in_this_process(ensemble) == "finished"
    with pytest.raises(InvalidInputError, match="is an ensemble already"):
        new_run(store, ensemble_config([finished_run.summary(), ensemble.summary()]), MACHINE_TEACHER)


def test_a_label_reviews_fold_models_answer_as_one(finished_review):
    summary = finished_review.summary()
    assert summary.has_model and summary.has_test_results
    view = members_view(summary)
    assert view.names == ["fold 1", "fold 2"]
    test_images = create_dataset(summary.dataset).splits["test"].images
    folds = [
        predict_probabilities(load_model_file(finished_review.path / f"fold-{k}.keras"), test_images) for k in (1, 2)
    ]
    np.testing.assert_allclose(finished_review.predictions()["probabilities"], (folds[0] + folds[1]) / 2, atol=1e-5)
    assert summary.test_balanced_accuracy == pytest.approx(saved_balanced_accuracy(finished_review))


def test_a_deleted_member_leaves_the_ensemble_whole_and_says_where_it_went(
    isolated_settings, finished_run, finished_transfer
):
    ada = User("ada", "Ada", "student")
    client = ServiceClient(isolated_settings["runs"])
    for run in (finished_run, finished_transfer):
        give_run(run, ada)
    ensemble = new_run(client.store, ensemble_config([finished_run.summary(), finished_transfer.summary()]), ada)
    assert train_in_this_process(ensemble) == "finished"
    before = ensemble.predictions()["probabilities"]
    client.delete(finished_run.id, ada)
    summary = ensemble.summary()
    assert member_whereabouts(client.store, summary) == ["in the trash", ""]
    client.empty_trash(User("lee", "Ms Lee", "teacher"))
    assert member_whereabouts(client.store, summary) == ["deleted", ""]
    np.testing.assert_allclose(members_view(summary).combined, before, atol=1e-6)
    test_images = create_dataset(summary.dataset).splits["test"].images
    np.testing.assert_allclose(
        predict_probabilities(load_model_file(ensemble.best_model_path), test_images), before, atol=1e-5
    )


def test_the_exported_ensemble_answers_as_the_lab_does(isolated_settings, finished_run, finished_transfer, tmp_path):
    run = new_run(
        RunStore(isolated_settings["runs"]),
        ensemble_config([finished_run.summary(), finished_transfer.summary()]),
        MACHINE_TEACHER,
    )
    assert train_in_this_process(run) == "finished"
    test_images = create_dataset(run.summary().dataset).splits["test"].images
    exported = load_model_file(export_run(run, "keras", tmp_path))
    np.testing.assert_allclose(
        predict_probabilities(exported, test_images), run.predictions()["probabilities"], atol=1e-5
    )
    with zipfile.ZipFile(export_run(run, "savedmodel", tmp_path)) as archive:
        assert "saved_model.pb" in archive.namelist()
    from ai_edge_litert.interpreter import Interpreter  # what a phone runs a .tflite file with

    interpreter = Interpreter(model_path=str(export_run(run, "tflite", tmp_path)))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], test_images[:1].astype(np.float32))
    interpreter.invoke()
    answer = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(answer[0], run.predictions()["probabilities"][0], atol=1e-5)
    card = json.loads(export_run(run, "json", tmp_path).read_text())
    assert card["model"] == "ensemble of 2 runs" and card["kind"] == "ensemble"
    assert card["options"]["members"] == [finished_run.id, finished_transfer.id]


def test_an_ensembles_gradcam_is_its_members_maps_weighted_for_its_own_answer(finished_ensemble):
    from galaxy_core.answers.explain import gradcam

    store = RunStore(finished_ensemble.path.parent)
    ids = finished_ensemble.summary().options["members"]
    members = [load_model_file(store.get(run_id).best_model_path) for run_id in ids]
    ensemble = load_model_file(finished_ensemble.best_model_path)
    images = create_dataset(finished_ensemble.summary().dataset).splits["test"].images[:4]
    answers = predict_probabilities(ensemble, images).argmax(axis=1)
    total = (gradcam(members[0], images, answers) + gradcam(members[1], images, answers)) / 2
    expected = total / np.maximum(total.max(axis=(1, 2), keepdims=True), 1e-12)
    np.testing.assert_allclose(gradcam(ensemble, images), expected, atol=1e-5)
    with pytest.raises(InvalidInputError, match="reads each member at its own layer"):
        gradcam(ensemble, images, layer_name="features_out")
