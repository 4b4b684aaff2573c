"""Label review: the review run, its store files, reviewers' decisions, the reviewed-labels CSV, and training on
the changed labels."""

import json

import numpy as np
import pytest

from galaxy_core.answers.prediction import ModelLoadError
from galaxy_core.answers.review import (
    ReviewError,
    has_review,
    label_changes_from_csv,
    load_review,
    record_review_decisions,
    review_decisions,
)
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import create_dataset
from galaxy_core.training import RunState, RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.kinds import describe_run_model
from galaxy_core.training.store import model_file_name
from pages.ui.runs import run_row
from tests.helpers import lab_viewer, rewrite_status, tiny_config


def test_a_review_run_ranks_doubted_labels_and_keeps_what_the_page_needs(finished_review):
    summary = finished_review.summary()
    assert summary.state is RunState.FINISHED and has_review(summary) and summary.has_model  # its folds' ensemble
    assert summary.epochs_done == summary.epochs_planned == 2  # 1 epoch x 2 folds
    assert describe_run_model(summary.config) == "label review: 2 x custom_cnn"
    assert finished_review.model_path("fold-1").is_file() and finished_review.model_path("fold-2").is_file()
    with pytest.raises(ModelLoadError, match="has no model of fold 3"):
        finished_review.model_path("fold-3")
    assert finished_review.model_path("best") == finished_review.best_model_path
    finished_review.best_model_path.unlink()  # a review from before its folds answered as one
    with pytest.raises(
        ModelLoadError, match="is a label review: its models \\(one per fold\\) are for its Label review"
    ):
        finished_review.model_path("best")  # what `galaxy-lab evaluate`, `predict` and `export` say
    saved = finished_review.arrays("review")
    train = len(saved["labels"])
    assert saved["probabilities"].shape == (train, 3) and set(saved["folds"]) == {0, 1}
    np.testing.assert_allclose(saved["probabilities"].sum(axis=1), 1.0, atol=1e-5)  # every image predicted
    review = load_review(summary, MACHINE_TEACHER)
    assert review.training_images == train and len(review.doubts) == len(saved["doubted"]) > 0
    assert summary.message.startswith(f"finished: {len(review.doubts)} of {train} training labels doubted")
    assert [doubt.rank for doubt in review.doubts] == list(range(1, len(review.doubts) + 1))
    for doubt in review.doubts:
        assert doubt.suggested != doubt.given and doubt.decision is None
        assert doubt.fold == saved["folds"][doubt.index] + 1
    # The most doubtful first: the probability of the given label rises down the list.
    given = [doubt.probabilities[doubt.given] for doubt in review.doubts]
    assert given == sorted(given)


def test_decisions_merge_and_become_label_changes_and_a_csv_that_reads_back(finished_review):
    doubts = load_review(finished_review.summary(), MACHINE_TEACHER).doubts
    first, second = doubts[0].image, doubts[-1].image
    record_review_decisions(finished_review, {first: "accepted"}, MACHINE_TEACHER)
    record_review_decisions(
        finished_review, {second: "rejected"}, MACHINE_TEACHER
    )  # a second reviewer's click adds to the first
    assert review_decisions(finished_review, MACHINE_TEACHER) == {first: "accepted", second: "rejected"}
    with pytest.raises(ValueError, match="a review decision is one of"):
        record_review_decisions(finished_review, {first: "maybe"}, MACHINE_TEACHER)
    review = load_review(finished_review.summary(), MACHINE_TEACHER)
    suggestion = review.class_names[doubts[0].suggested]
    assert review.label_changes("relabel") == {first: suggestion}
    assert review.label_changes("leave_out") == {first: None}
    with pytest.raises(ValueError, match="one of \\['relabel', 'leave_out'\\]"):
        review.label_changes("delete")
    text = review.to_csv()
    assert text.splitlines()[0].split(",")[:4] == ["rank", "image", "given_label", "suggested_label"]
    assert label_changes_from_csv(text.encode(), review.class_names, "relabel") == {first: suggestion}
    record_review_decisions(finished_review, {first: None}, MACHINE_TEACHER)  # undecided again
    assert review_decisions(finished_review, MACHINE_TEACHER) == {second: "rejected"}
    (finished_review.path / "review-decisions.json").write_text("{not json")
    assert review_decisions(finished_review, MACHINE_TEACHER) == {}  # a damaged file reads as no decisions


def test_confident_suggestions_accept_only_above_the_threshold(finished_review):
    review = load_review(finished_review.summary(), MACHINE_TEACHER)
    top = max(doubt.probabilities[doubt.suggested] for doubt in review.doubts)
    assert set(review.confident_suggestions(0.5 * top).values()) == {"accepted"}
    assert review.confident_suggestions(min(1.0, top + 1e-6)) == {}
    decided = next(iter(review.confident_suggestions(0.5 * top)))
    record_review_decisions(
        finished_review, {decided: "rejected"}, MACHINE_TEACHER
    )  # a reviewer's decision is never undone
    assert decided not in load_review(finished_review.summary(), MACHINE_TEACHER).confident_suggestions(0.5 * top)
    with pytest.raises(ValueError, match="a probability in \\(0, 1\\]"):
        review.confident_suggestions(0)


def test_a_run_that_is_no_finished_review_is_refused_with_its_reason(finished_run, finished_review):
    with pytest.raises(ReviewError, match="trained a model; it is not a label review"):
        load_review(finished_run.summary(), MACHINE_TEACHER)
    rewrite_status(finished_review, "running")
    with pytest.raises(ReviewError, match="has no results: it is running"):
        load_review(finished_review.summary(), MACHINE_TEACHER)
    rewrite_status(finished_review, "finished")
    finished_review.array_path("review").write_bytes(b"not a zip")
    with pytest.raises(ReviewError, match="cannot be read"):
        load_review(finished_review.summary(), MACHINE_TEACHER)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\xff\xfe\x00bad", "not a CSV text file"),
        (b"image,label\nx,y\n", "needs a header with the columns"),
        (b"image,suggested_label,decision\n", "needs a header with the columns"),
        (b"image,suggested_label,decision\na,spiral,yes\n", "line 2: decision is 'accepted', 'rejected' or blank"),
        (b"image,suggested_label,decision\na,dragon,accepted\n", "line 2: 'dragon' is not a class"),
        (b"image,suggested_label,decision\na,spiral,rejected\n", "accepts no suggestion"),
        (b"x" * 5_000_001, "over 5 MB"),
    ],
)
def test_a_bad_reviewed_labels_file_is_refused_with_the_first_problem(data, message):
    with pytest.raises(ReviewError, match=message):
        label_changes_from_csv(data, ("edge", "smooth", "spiral"), "relabel")


def test_label_changes_touch_only_the_training_split(isolated_settings):
    dataset = create_dataset(tiny_config().dataset, cache_dir=isolated_settings["cache"])
    train = dataset.splits["train"]
    relabelled, left_out = str(train.source_ids[0]), str(train.source_ids[1])
    new_class = dataset.class_names[(train.labels[0] + 1) % 3]
    changed = dataset.with_training_labels_changed({relabelled: new_class, left_out: None, "elsewhere": None})
    assert len(changed.splits["train"]) == len(train) - 1
    assert left_out not in changed.splits["train"].source_ids
    assert changed.splits["train"].labels[0] == dataset.class_names.index(new_class)
    for name in ("val", "test"):
        assert changed.splits[name] is dataset.splits[name]
    with pytest.raises(ValueError, match="classes this dataset does not have: dragon"):
        dataset.with_training_labels_changed({relabelled: "dragon"})
    with pytest.raises(ValueError, match="none of the 1 label changes names an image of this dataset's training"):
        dataset.with_training_labels_changed({"elsewhere": None})


def test_a_run_trains_on_the_changed_labels_and_says_so(isolated_settings):
    dataset = create_dataset(tiny_config().dataset, cache_dir=isolated_settings["cache"])
    left_out = [str(source_id) for source_id in dataset.splits["train"].source_ids[:5]]
    config = tiny_config(epochs=1, label_changes=dict.fromkeys(left_out), label_changes_from="review x, left out")
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) is RunState.FINISHED
    trained = len(dataset.splits["train"]) - 5
    assert run.progress()["dataset_sizes"]["train"] == trained
    assert f"5 training labels changed (review x, left out): {trained + 5} training images, {trained} kept" in (
        run.log_tail()
    )
    assert run_row(run.summary(), lab_viewer())["dataset"].endswith("(reviewed labels)")


def test_a_stop_during_a_review_leaves_no_review_and_says_why(isolated_settings):
    import keras

    config = tiny_config(kind="label_review", folds=2)
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)

    class StopAtOnce(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            run.request_stop()

    assert train_in_this_process(run, observers=[StopAtOnce()]) is RunState.STOPPED
    assert "no review (every image needs the prediction of its fold's model)" in run.summary().message
    assert run.log_tail().count("stop requested: training ends here") == 1  # said once, as a training run says it
    assert run.arrays("review") is None and not (run.path / model_file_name("fold-1")).exists()


def test_a_dataset_too_small_for_its_folds_fails_the_review_with_the_reason(isolated_settings):
    config = tiny_config(kind="label_review", folds=10, dataset={**tiny_config().dataset.to_dict(), "num_images": 30})
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) is RunState.FAILED
    assert "a 10-fold review needs at least 10 training images of each class" in run.summary().message


def test_model_file_names_are_the_runs_own():
    assert model_file_name("best") == "best.keras" and model_file_name("fold-3") == "fold-3.keras"
    for bad in ("fold-0", "fold-x", "../best", "fold-1/../../x", "worst"):
        with pytest.raises(ValueError, match="not a model of a run"):
            model_file_name(bad)


def test_a_remote_review_lands_in_the_run_folder(isolated_settings):
    from galaxy_core.training.ray_executor import RemoteRun, apply_events

    config = tiny_config(kind="label_review", folds=2)
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    remote = RemoteRun(run.id, json.loads(json.dumps(config.to_dict())), {})
    remote.save_arrays("review", doubted=np.array([2, 0]), labels=np.array([0, 1, 2]))
    apply_events(run, remote.news(False))
    remote.close()
    assert run.arrays("review")["doubted"].tolist() == [2, 0]


def test_each_reviewer_keeps_their_own_decisions_and_the_class_has_a_majority(finished_review):
    from galaxy_core.answers.review import CLASS_MAJORITY, class_decisions, trainable_decision_sets
    from galaxy_core.classroom.people import STUDENT, User

    ada, bob, cy = (User(name.lower(), name, STUDENT) for name in ("Ada", "Bob", "Cy"))
    doubts = load_review(finished_review.summary(), MACHINE_TEACHER).doubts
    first = doubts[0].image
    record_review_decisions(finished_review, {first: "accepted"}, ada)
    record_review_decisions(finished_review, {first: "rejected"}, bob)  # not the last click wins: each their own
    record_review_decisions(finished_review, {first: "accepted"}, cy)
    assert review_decisions(finished_review, ada) == {first: "accepted"}
    assert review_decisions(finished_review, bob) == {first: "rejected"}
    assert review_decisions(finished_review, MACHINE_TEACHER) == {}  # the teacher has decided nothing
    assert review_decisions(finished_review, MACHINE_TEACHER, decision_set=CLASS_MAJORITY) == {
        first: "accepted"
    }  # 2 against 1
    assert {entry["name"] for entry in class_decisions(finished_review, MACHINE_TEACHER).values()} == {
        "Ada",
        "Bob",
        "Cy",
    }
    # What each may train on: sets that accept a suggestion; a student their own, the teacher every reviewer's too.
    assert trainable_decision_sets(finished_review, ada) == {"ada": "your decisions"}
    assert trainable_decision_sets(finished_review, bob) == {}  # Bob accepted nothing
    assert trainable_decision_sets(finished_review, MACHINE_TEACHER) == {
        CLASS_MAJORITY: "the class's majority",
        "ada": "Ada's decisions",
        "cy": "Cy's decisions",
    }
    seen_by_bob = load_review(finished_review.summary(), bob).doubts[0]
    assert (seen_by_bob.decision, seen_by_bob.accepted_by, seen_by_bob.rejected_by) == ("rejected", 2, 1)
    # A decisions file of an older lab (one shared set) reads as the teacher's.
    (finished_review.path / "review-decisions.json").write_text(json.dumps({first: "accepted"}))
    assert (
        review_decisions(finished_review, MACHINE_TEACHER) == {first: "accepted"}
        and review_decisions(finished_review, ada) == {}
    )
