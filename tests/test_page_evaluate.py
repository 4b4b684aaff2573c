"""The Evaluate page under AppTest: metrics, confusion-matrix cells, mistakes, Grad-CAM, and its bad states."""

import numpy as np
import pytest

from galaxy_core.answers.inference import saved_predictions
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.evaluation import LABEL_NOISE_NOTE, balanced_accuracy_interval
from galaxy_core.training import RunStore, TrainConfig
from galaxy_core.training.client import new_run
from galaxy_core.training.records import short_run_id
from pages.ui.runs import run_label, run_row
from tests.helpers import lab_viewer, open_page, rewrite_status, saved_balanced_accuracy, unescaped


def test_no_runs_yet_points_to_the_train_page():
    at = open_page("evaluate")
    assert not at.exception
    assert "No run with a model yet" in at.info[0].value


def test_metrics_tab_shows_the_headline_figures_and_per_class_table(finished_run):
    at = open_page("evaluate")
    assert not at.exception
    assert [m.label for m in at.metric] == ["Accuracy", "Balanced accuracy", "Macro F1"]
    assert at.metric[1].value == f"{saved_balanced_accuracy(finished_run):.1%}"
    saved = saved_predictions(finished_run)
    low, high = balanced_accuracy_interval(saved.labels, saved.probabilities.argmax(axis=1))
    assert any(f"95% interval: {low:.1%} to {high:.1%}" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["class"]) == ["edge", "smooth", "spiral"]


def test_choosing_a_confusion_matrix_cell_shows_its_images(finished_run):
    saved = saved_predictions(finished_run)
    predicted = saved.probabilities.argmax(axis=1)
    at = open_page("evaluate", evaluate_tabs="Confusion matrix")
    assert not at.exception and len(at.get("plotly_chart")) == 1
    for true_index, true_name in enumerate(["edge", "smooth", "spiral"]):
        for predicted_index, predicted_name in enumerate(["edge", "smooth", "spiral"]):
            at.selectbox(key="evaluate_cell_true").select(true_name)
            at.selectbox(key="evaluate_cell_predicted").select(predicted_name).run()
            count = int(np.sum((saved.labels == true_index) & (predicted == predicted_index)))
            said = f"**{count}** test image is" if count == 1 else f"**{count}** test images are"
            assert f"{said} **{true_name}**" in at.markdown[-1].value
            assert len(at.get("image")) == min(count, 24)


def with_mistakes(run, count: int) -> None:
    """Rewrite the run's saved test answers: the first `count` images wrong, with falling confidence."""
    with np.load(run.predictions_path) as saved:
        arrays = dict(saved)
    labels = arrays["labels"]
    probabilities = np.eye(3)[labels] * 0.9 + 0.05
    for index in range(count):
        confidence = 0.95 - 0.5 * index / max(count, 1)
        probabilities[index] = (1 - confidence) / 2
        probabilities[index, (labels[index] + 1) % 3] = confidence
    np.savez(run.predictions_path, **{**arrays, "probabilities": probabilities})


@pytest.mark.parametrize("count", [0, 1, 6, 7, "all"])  # the toy run has 9 test images
def test_mistakes_gallery_lists_the_most_confident_mistakes_first(finished_run, count):
    total = len(saved_predictions(finished_run).labels)
    count = total if count == "all" else count
    with_mistakes(finished_run, count)
    at = open_page("evaluate", evaluate_tabs="Mistakes")
    assert not at.exception
    if count == 0:
        assert "No test image is misclassified" in at.success[0].value
        return
    assert f"**{count}** of {total} test images are misclassified" in at.markdown[0].value
    assert len(at.slider) == (1 if count > 6 else 0)  # no slider with nothing to choose
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert len(captions) == min(count, 24)
    confidences = [int(c.rsplit(" ", 1)[1].rstrip("%")) for c in captions]
    assert confidences == sorted(confidences, reverse=True)


def test_gradcam_controls_explain_chosen_classes_with_a_chosen_layer(finished_run):
    at = open_page("evaluate", evaluate_tabs="Grad-CAM")
    assert not at.exception
    assert at.selectbox(key="evaluate_layer").value == "features_out"
    index = at.selectbox(key="evaluate_image").value
    classes = at.multiselect(key=f"evaluate_classes_{index}")
    assert len(classes.value) == 1
    before = len(at.get("image"))
    classes.set_value(["edge", "smooth", "spiral"]).run()
    assert not at.exception and len(at.get("image")) == before + 4  # a Grad-CAM and an occlusion map each
    verdicts = next(c.value for c in at.caption if "Grad-CAM reads the gradients" in c.value)
    assert all(f"{name}:" in verdicts for name in ("edge", "smooth", "spiral"))
    at.selectbox(key="evaluate_layer").select("block1_relu1").run()
    assert not at.exception


def test_feature_map_tab_plots_every_test_image_and_explains_the_chosen_one(finished_run):
    at = open_page("evaluate", evaluate_tabs="Feature map")
    assert not at.exception
    import plotly.io

    figure = plotly.io.from_json(at.get("plotly_chart")[0].proto.spec)
    plotted = sorted(int(row[0]) for trace in figure.data for row in np.asarray(trace.customdata))
    assert plotted == list(range(len(saved_predictions(finished_run).labels)))  # every test image, once
    assert {trace.legendgroup.split(",")[0] for trace in figure.data} <= {"edge", "smooth", "spiral"}
    images = len(at.get("image"))
    assert images == 3  # the chosen galaxy, its Grad-CAM and its occlusion map for the predicted class
    at.selectbox(key="evaluate_image").select(4).run()
    assert not at.exception and len(at.get("image")) == images


def test_inside_the_network_and_tta_tabs(finished_run):
    at = open_page("evaluate", evaluate_tabs="Inside the network")
    assert not at.exception
    assert any("First-layer filters" in m.value for m in at.markdown)
    at = open_page("evaluate", evaluate_tabs="Test-time augmentation")
    assert not at.exception
    assert list(at.dataframe[0].value.index) == ["one view", "8 views averaged"]
    assert any("Averaging corrects" in m.value for m in at.markdown)
    assert LABEL_NOISE_NOTE in [c.value for c in at.caption]


def test_final_model_and_tta_switches(finished_run):
    at = open_page("evaluate")
    at.radio(key="evaluate_checkpoint").set_value("final").run()
    assert not at.exception and len(at.metric) == 3
    at.toggle(key="evaluate_tta").set_value(True).run()
    assert not at.exception
    at.radio(key="evaluate_checkpoint").set_value("best").run()
    assert at.metric[1].value == f"{saved_balanced_accuracy(finished_run, 'tta_probabilities'):.1%}"


def test_a_failed_run_with_a_checkpoint_says_what_is_shown(finished_run):
    rewrite_status(finished_run, "failed", error="ValueError: something broke", message=None)
    at = open_page("evaluate")
    assert not at.error
    assert "This run failed: ValueError: something broke" in unescaped(at.warning[0].value)
    assert "best checkpoint so far" in at.warning[0].value


def test_runs_without_a_model_are_listed_apart_with_their_reason_never_as_an_error(finished_run):
    early = new_run(RunStore(finished_run.path.parent), TrainConfig.from_dict(finished_run.config()), MACHINE_TEACHER)
    early.move_to("stopped", message="stopped while loading its dataset: no model")
    finished_run.final_model_path.unlink()  # stopped after its first epochs: a best checkpoint, no final model
    at = open_page("evaluate")
    assert not at.exception and not at.error
    assert at.selectbox(key="evaluate_run").options == [run_label(finished_run.summary(), lab_viewer())]
    assert at.expander[0].label == "1 other run(s) cannot be evaluated"
    listed = at.expander[0].markdown[0].value  # the message is escaped for Markdown: shown as written
    assert f"`{early.id}` (custom_cnn): stopped while loading its dataset\\: no model" in listed
    assert at.radio(key="evaluate_checkpoint").options == ["best checkpoint (best validation epoch)"]


def test_a_model_file_that_no_longer_loads_is_reported_where_the_model_is_needed(finished_run):
    finished_run.best_model_path.write_bytes(b"garbage")
    at = open_page("evaluate")
    assert not at.exception and not at.error  # the figures come from the saved predictions
    assert at.metric[0].label == "Accuracy"
    at = open_page("evaluate", evaluate_tabs="Grad-CAM")
    assert not at.exception
    assert "The model cannot be loaded" in at.error[0].value


def test_a_run_without_a_test_split_is_reported(finished_run):
    config = finished_run.config()
    config["dataset"]["test_fraction"] = 0.0
    (finished_run.path / "config.json").write_text(__import__("json").dumps(config))
    at = open_page("evaluate")
    assert not at.exception
    assert "has no test split" in at.error[0].value


def test_a_feature_map_of_too_few_test_images_is_explained_not_drawn(isolated_settings):
    from galaxy_core.training.client import new_run, train_in_this_process
    from tests.helpers import tiny_config, write_image_folder

    root = write_image_folder(isolated_settings["data"] / "pair", {"a": 10, "b": 10})
    dataset = {"name": "folder", "path": str(root), "image_size": 16, "test_fraction": 0.1}
    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(dataset=dataset, epochs=1), MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished"
    assert len(saved_predictions(run).labels) == 2  # one test image per class
    at = open_page("evaluate", evaluate_tabs="Feature map")
    assert not at.exception
    assert "No feature map for this run: a 2-D projection needs at least 3 feature vectors" in unescaped(
        at.info[0].value
    )


def test_a_transfer_run_is_evaluated_and_explained_as_any_other_and_links_to_its_base(finished_transfer):
    """Its network is whole (the base's layers and the new head): every tab that loads it works, Grad-CAM on the
    base's own last feature layer; a button picks its base in the run menu."""
    for tab in ("Metrics", "Grad-CAM", "Inside the network", "Feature map"):
        at = open_page("evaluate", evaluate_run=finished_transfer.id, evaluate_tabs=tab)
        assert not at.exception and not at.error, tab
    assert at.selectbox(key="evaluate_image") is not None and len(at.get("image")) == 3
    at = open_page("evaluate", evaluate_run=finished_transfer.id, evaluate_tabs="Grad-CAM")
    assert at.selectbox(key="evaluate_layer").value == "features_out"
    base = finished_transfer.summary().base_run
    at.button(key="evaluate_run_base").click().run()
    assert not at.exception and at.selectbox(key="evaluate_run").value == base


def test_an_ensemble_is_evaluated_whole_or_member_by_member_and_says_what_each_member_adds(finished_ensemble):
    store = RunStore(finished_ensemble.path.parent)
    members = [store.get(run_id) for run_id in finished_ensemble.summary().options["members"]]
    for tab in ("Metrics", "Grad-CAM", "Inside the network", "Feature map", "Members"):
        at = open_page("evaluate", evaluate_run=finished_ensemble.id, evaluate_tabs=tab)
        assert not at.exception and not at.error, tab
    at = open_page("evaluate", evaluate_run=finished_ensemble.id, evaluate_tabs="Members")
    table = at.dataframe[0].value
    assert list(table["member"]) == [f"run {short_run_id(member.id)}" for member in members]
    assert list(table["test balanced acc"]) == pytest.approx([saved_balanced_accuracy(member) for member in members])
    assert list(table["weight"]) == pytest.approx([0.5, 0.5])
    at = open_page("evaluate", evaluate_run=finished_ensemble.id, evaluate_tabs="Metrics")
    assert at.metric[1].value == f"{saved_balanced_accuracy(finished_ensemble):.1%}"
    at.selectbox(key="evaluate_member").select(f"run {short_run_id(members[1].id)}").run()  # one member: its own
    assert not at.exception and at.metric[1].value == f"{saved_balanced_accuracy(members[1]):.1%}"
    at = open_page("evaluate", evaluate_run=finished_ensemble.id, evaluate_tabs="Grad-CAM")
    assert not at.exception and not [box for box in at.selectbox if box.key == "evaluate_layer"]  # each member's own
    at.selectbox(key="evaluate_member").select(f"run {short_run_id(members[0].id)}").run()
    assert not at.exception and at.selectbox(key="evaluate_layer").value


def test_a_look_at_evaluate_while_a_run_trains_leaves_the_train_page_on_that_run(finished_run, isolated_settings):
    """A person watching a run that has no test results yet opens Evaluate (which shows another run): back on
    Train, the panel is still on the run they were watching. Choosing a run on Evaluate does move it."""
    import shutil
    import subprocess

    from tests.helpers import run_in_its_first_epoch

    other = finished_run.path.with_name(f"{finished_run.id}-copy")
    shutil.copytree(finished_run.path, other)
    stand_in = subprocess.Popen(["sleep", "120"])  # the training run's worker, as the service sees it
    try:
        training = run_in_its_first_epoch(isolated_settings["runs"], stand_in.pid)
        at = open_page("evaluate", viewed_run=training.id)
        shown = at.selectbox(key="evaluate_run").value
        assert not at.exception and shown in (finished_run.id, other.name)  # the training run cannot be evaluated
        viewed = at.session_state["viewed_run"]
        assert viewed == training.id
        at = open_page("train", viewed_run=viewed)  # what the session carries back to Train
        assert not at.exception and at.session_state["viewed_run"] == training.id
        assert training.id in at.markdown[0].value  # the run panel's header
        chosen = other.name if shown == finished_run.id else finished_run.id
        at = open_page("evaluate", viewed_run=training.id)
        at.selectbox(key="evaluate_run").set_value(chosen).run()
        assert at.session_state["viewed_run"] == chosen  # the person's own choice here
    finally:
        stand_in.kill()


def test_the_train_page_lists_an_ensemble_as_what_it_is(finished_ensemble):
    row = run_row(finished_ensemble.summary(), lab_viewer())
    assert (row["model"], row["epochs"]) == ("ensemble of 2 runs", "no training")
    at = open_page("train", viewed_run=finished_ensemble.id)
    assert not at.exception and not at.error
    assert "ensemble of 2 runs on synthetic" in at.markdown[0].value
    assert unescaped(at.success[0].value) == "The run finished: 2 members answering as one, evaluated."
    assert not at.get("plotly_chart")  # no training, so no curves


def test_a_seed_ensemble_shows_its_curves_and_each_network_by_its_seed(isolated_settings):
    from galaxy_core.answers.prediction import load_model_file, predict_probabilities
    from galaxy_core.data import create_dataset
    from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
    from galaxy_core.models.ensemble import ensemble_members
    from galaxy_core.training.client import train_in_this_process
    from tests.helpers import tiny_config

    run = new_run(
        RunStore(isolated_settings["runs"]), tiny_config(kind="seed_ensemble", ensemble_size=2, seed=5), MACHINE_TEACHER
    )
    assert train_in_this_process(run) == "finished"
    row = run_row(run.summary(), lab_viewer())
    assert (row["model"], row["epochs"]) == ("ensemble: 2 x custom_cnn", "4/4")
    at = open_page("train", viewed_run=run.id)
    assert not at.exception and not at.error and at.get("plotly_chart")  # it trained: its curves
    layout = __import__("json").loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert {shape["x0"] for shape in layout["shapes"]} == {2}  # the second network starts after epoch 2
    assert {note["text"] for note in layout["annotations"]} >= {"network 2"}
    at = open_page("evaluate", evaluate_run=run.id, evaluate_tabs="Members")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["member"]) == ["seed 5", "seed 6"]
    test = create_dataset(run.summary().dataset).splits["test"]
    networks = [network for network, _ in ensemble_members(load_model_file(run.best_model_path))]
    expected = [
        balanced_accuracy(confusion_matrix(test.labels, predict_probabilities(net, test.images).argmax(axis=1), 3))
        for net in networks
    ]
    assert list(table["test balanced acc"]) == pytest.approx(expected)
    assert list(table["its run"]) == ["here", "here"]
