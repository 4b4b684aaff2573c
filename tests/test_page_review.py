"""The Label review page, and the Train page's label review recipe and reviewed training labels (AppTest)."""

import json

import pytest

from galaxy_core.answers.review import load_review, record_review_decisions, review_decisions
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec
from pages.review import PER_PAGE
from tests.conftest import REVIEW_RUN_CONFIG
from tests.helpers import open_page, unescaped

REVIEWED_SPEC = DatasetSpec.from_dict(REVIEW_RUN_CONFIG["dataset"])


@pytest.fixture
def nowhere_to_train(monkeypatch):
    """Queued runs wait (their Ray cluster is unreachable): a page test queues runs without training them."""
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")


def queued_config(runs_folder, other_than=()) -> dict:
    run_dir = next(p for p in runs_folder.iterdir() if p.is_dir() and p.name not in other_than)
    return json.loads((run_dir / "config.json").read_text())


def test_review_page_without_a_review_says_where_to_start_one(finished_run):
    at = open_page("review")
    assert not at.exception
    assert "No finished label review yet" in at.info[0].value
    assert not at.expander  # a training run is not listed as a review that cannot be shown


def test_review_page_lists_the_doubts_and_records_each_decision(finished_review):
    review = load_review(finished_review.summary(), MACHINE_TEACHER)
    at = open_page("review")
    assert not at.exception
    assert [m.label for m in at.metric] == ["Doubted labels", "Share of the training split", "Accepted", "Rejected"]
    assert at.metric[0].value == str(len(review.doubts))
    first = review.doubts[0]
    decision = at.radio(key=f"review_decision_{finished_review.id}_{first.image}")
    assert decision.value == "undecided"
    assert len([r for r in at.radio if r.key.startswith("review_decision_")]) == min(PER_PAGE, len(review.doubts))
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert (
        f"Grad-CAM · {review.class_names[first.suggested]}: p = {first.probabilities[first.suggested]:.2f}" in captions
    )
    decision.set_value("accepted").run()
    assert not at.exception
    assert review_decisions(finished_review, MACHINE_TEACHER) == {first.image: "accepted"}
    assert at.metric[2].value == "1"
    at.radio(key="review_show").set_value("accepted").run()  # only the accepted one is listed now
    assert [r.key for r in at.radio if r.key.startswith("review_decision_")] == [
        f"review_decision_{finished_review.id}_{first.image}"
    ]
    assert at.get("download_button")


def test_review_page_accepts_the_confident_suggestions_in_one_go(finished_review):
    saved = finished_review.arrays("review")
    doubted = int(saved["doubted"][-1])  # the least doubtful, made the one confident suggestion
    confident = (int(saved["labels"][doubted]) + 1) % 3
    saved["probabilities"] = saved["probabilities"].copy()
    saved["probabilities"][saved["doubted"]] = 1 / 3
    saved["probabilities"][doubted] = [0.9 if c == confident else 0.05 for c in range(3)]
    finished_review.save_arrays("review", **saved)
    at = open_page("review")
    at.slider(key="review_threshold").set_value(0.85).run()
    button = at.button(key="review_accept_confident")
    assert button.label == "Accept 1"
    button.click().run()
    assert not at.exception
    assert review_decisions(finished_review, MACHINE_TEACHER) == {str(saved["source_ids"][doubted]): "accepted"}
    assert at.button(key="review_accept_confident").label == "Accept 0"  # decided ones are not counted again


def test_review_page_says_why_a_damaged_review_cannot_be_shown(finished_review):
    finished_review.array_path("review").write_bytes(b"damaged")
    at = open_page("review")
    assert not at.exception
    assert "This review cannot be shown" in at.error[0].value and "cannot be read" in at.error[0].value


def test_train_page_queues_a_label_review(isolated_settings, nowhere_to_train):
    at = open_page("train", active_dataset_spec=REVIEWED_SPEC)
    at.radio(key="train_recipe").set_value("review").run()
    assert not at.exception
    at.number_input(key="train_review_folds").set_value(3).run()
    at.button(key="train_review").click().run()
    assert not at.exception and at.success[0].value.startswith("Queued run ")
    config = queued_config(isolated_settings["runs"])
    assert (config["kind"], config["options"]["folds"], config["epochs"]) == ("label_review", 3, 8)


def test_train_page_refuses_more_folds_than_a_class_has_images(isolated_settings):
    tiny = DatasetSpec.of("synthetic", num_images=30).with_preprocess(image_size=16)
    at = open_page("train", active_dataset_spec=tiny)
    at.radio(key="train_recipe").set_value("review").run()
    at.number_input(key="train_review_folds").set_value(10).run()
    assert not at.exception
    assert "cannot be reviewed in 10 folds: a 10-fold review needs at least 10 training images of each class" in (
        unescaped(at.warning[0].value)
    )
    assert "train_review" not in [button.key for button in at.button]


def test_train_page_trains_on_a_reviews_accepted_labels(finished_review, isolated_settings, nowhere_to_train):
    at = open_page("train", active_dataset_spec=REVIEWED_SPEC, train_new_run=True)
    assert "train_labels" not in [s.key for s in at.selectbox]  # nothing accepted yet: nothing to offer
    accepted = load_review(finished_review.summary(), MACHINE_TEACHER).doubts[0].image
    record_review_decisions(finished_review, {accepted: "accepted"}, MACHINE_TEACHER)
    at = open_page("train", active_dataset_spec=REVIEWED_SPEC, train_new_run=True)  # runs exist: it starts closed
    at.selectbox(key="train_labels").select((finished_review.id, "teacher")).run()
    at.radio(key="train_labels_action").set_value("leave_out").run()
    assert any("1 training images left out" in c.value for c in at.caption)
    at.radio(key="train_recipe").set_value("quick").run()
    at.button(key="train_quick").click().run()
    assert not at.exception and at.success[0].value.startswith("Queued run ")
    config = queued_config(isolated_settings["runs"], other_than={finished_review.id})
    assert config["label_changes"] == {accepted: None}
    assert config["label_changes_from"] == (
        f"reviewed by {finished_review.id}: your decisions, accepted suggestions left out"
    )
