"""The Classify and Compare pages under AppTest: mixed good and bad uploads, CSV, export; overlaid runs, the paired
test and the disagreement gallery, and runs that must not be mixed."""

import json
import shutil

import numpy as np
import pytest

from galaxy_core.evaluation import (
    LABEL_NOISE_NOTE,
    balanced_accuracy_interval,
    summarize,
)
from galaxy_core.training import Run, RunStore
from tests.helpers import open_page, rewrite_status, saved_balanced_accuracy, unescaped
from tests.uploads import encode, galaxy_photo, mixed_uploads, zip_of


@pytest.fixture
def second_run(finished_run) -> Run:
    """A copy of the finished run whose saved test answers differ on three images (its 'model' is the same file)."""
    target = finished_run.path.with_name(finished_run.id.replace("custom_cnn", "custom_cnn-b"))
    shutil.copytree(finished_run.path, target)
    run = Run(target)
    with np.load(run.predictions_path) as saved:
        arrays = dict(saved)
    probabilities = arrays["probabilities"]
    for index in range(3):  # answer one class further on
        probabilities[index] = np.roll(probabilities[index], 1)
    np.savez(run.predictions_path, **arrays)
    summary = summarize(arrays["labels"], probabilities.argmax(axis=1), ["edge", "smooth", "spiral"])
    run.evaluation_path.write_text(json.dumps(summary))
    rewrite_status(run, "finished", test_balanced_accuracy=summary["balanced_accuracy"])
    return run


def test_classify_without_runs_points_to_training():
    at = open_page("classify")
    assert not at.exception and "No trained model yet" in at.info[0].value


def test_classify_mixed_uploads_reports_each_bad_file_and_classifies_the_rest(finished_run):
    at = open_page("classify")
    assert not at.exception and LABEL_NOISE_NOTE in [c.value for c in at.caption]  # the menu shows accuracies
    size = finished_run.summary().dataset.preprocess.image_size  # trained on uncropped images
    assert any(f"the largest centred square, resized to {size} px" in c.value for c in at.caption)
    uploads = mixed_uploads()
    bundle = zip_of({"more/a.png": uploads[0][1], "more/notes.txt": b"hi"})
    files = [(name, data, "application/octet-stream") for name, data, _ in uploads] + [
        ("bundle.zip", bundle, "application/zip"),
        ("galaxy.jpg", encode(galaxy_photo(70), "JPEG"), "image/jpeg"),  # another picture of the same name
        ("rotated.jpg", uploads[1][1], "image/jpeg"),  # the same picture dropped again: shown once
    ]
    at.file_uploader(key="classify_uploads_0").set_value(files).run()
    assert not at.exception
    assert "1 file(s) dropped again are shown once." in [c.value for c in at.caption]
    warnings = [unescaped(w.value) for w in at.warning]
    for name, _, reason in uploads:
        if reason:
            assert any(f"**{name}** was not classified" in w and reason in w for w in warnings), name
    assert any("bundle.zip/more/notes.txt" in w for w in warnings)
    good = [name for name, _, reason in uploads if reason is None] + ["bundle.zip/more/a.png", "galaxy.jpg (2)"]
    table = at.dataframe[0].value
    assert list(table["file"]) == good
    assert set(table["prediction"]) <= {"edge", "smooth", "spiral"}
    np.testing.assert_allclose(table[["p(edge)", "p(smooth)", "p(spiral)"]].sum(axis=1), 1, atol=1e-4)
    assert "enlarged" in table.set_index("file").loc["tiny.png", "notes"]
    assert len(at.get("image")) == 2 * len(good)  # what the model sees and its Grad-CAM, per image
    assert len(at.get("download_button")) == 1  # the CSV


def test_classify_from_the_dataset_with_tta(finished_run):
    at = open_page("classify", classify_source="From the dataset", classify_tta=True)
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 4 and "spread(edge)" in table.columns
    assert all("(true: " in name for name in table["file"])


def test_classify_prepares_a_model_download(finished_run):
    at = open_page("classify", classify_export="json")
    at.button(key="classify_prepare").click().run()
    assert not at.exception
    assert any(b.proto.label.startswith("Download Model card") for b in at.get("download_button"))


def test_classify_reports_a_model_that_cannot_load_when_there_is_something_to_classify(finished_run):
    finished_run.best_model_path.write_bytes(b"garbage")
    at = open_page("classify")
    assert not at.exception and not at.error  # the page opens without loading the model
    at = open_page("classify", classify_source="From the dataset")
    assert not at.exception and "cannot be used" in at.error[0].value and "images are kept" in at.error[0].value


def test_compare_needs_two_runs(finished_run):
    at = open_page("compare")
    assert not at.exception and "at least two runs with test results" in at.info[0].value
    assert "sidebar" not in at.info[0].value  # no sign-in: every run is listed already


def test_compare_curves_figures_and_matrices(finished_run, second_run):
    at = open_page("compare")
    assert not at.exception
    assert len(at.multiselect(key="compare_runs").value) == 2
    table = at.dataframe[0].value  # the first view: the figures side by side
    assert set(table["run"]) == {finished_run.id, second_run.id}
    assert {"parameters", "training min", "test balanced accuracy", "recall spiral"} <= set(table.columns)
    for run in (finished_run, second_run):
        saved = np.load(run.predictions_path)
        low, high = balanced_accuracy_interval(saved["labels"], saved["probabilities"].argmax(axis=1))
        row = table[table["run"] == run.id].iloc[0]
        assert row["95% interval"] == f"{low:.3f} to {high:.3f}"
        assert row["test balanced accuracy"] == pytest.approx(saved_balanced_accuracy(run))
    at = open_page("compare", compare_tabs="Curves")
    assert not at.exception and len(at.get("plotly_chart")) == 1
    at = open_page("compare", compare_tabs="Confusion matrices")
    assert not at.exception and len(at.get("plotly_chart")) == 2


def test_compare_paired_test_and_disagreements(finished_run, second_run):
    at = open_page("compare", compare_tabs="Significance")
    assert not at.exception
    table = at.dataframe[0].value
    assert int(table.values.sum()) == len(np.load(finished_run.predictions_path)["labels"])
    assert at.metric[0].label == "p-value (McNemar, exact)"
    assert any("by chance" in m.value for m in at.markdown)
    runs = {run.id: run for run in (finished_run, second_run)}
    chosen = [runs[run_id] for run_id in at.multiselect(key="compare_runs").value]
    first, second = (np.load(run.predictions_path) for run in chosen)
    labels, answers = first["labels"], [saved["probabilities"].argmax(axis=1) for saved in (first, second)]
    difference = saved_balanced_accuracy(chosen[0]) - saved_balanced_accuracy(chosen[1])
    assert at.metric[1].label.startswith("Balanced accuracy, ") and at.metric[1].value == f"{difference:+.3f}"
    low, high = balanced_accuracy_interval(labels, *answers)
    assert any(f"interval of the difference is {low:+.3f} to {high:+.3f}" in m.value for m in at.markdown)
    at = open_page("compare", compare_tabs="Disagreements")
    assert not at.exception
    assert "The two runs disagree on **3** of" in at.markdown[0].value
    assert len(at.get("image")) == 3 * 3  # each image, and both models' Grad-CAMs


def test_compare_shared_mistakes_lists_the_images_both_runs_get_wrong(finished_run, second_run):
    saved = [np.load(run.predictions_path) for run in (finished_run, second_run)]
    labels = saved[0]["labels"]
    both_wrong = np.all([s["probabilities"].argmax(axis=1) != labels for s in saved], axis=0)
    at = open_page("compare", compare_tabs="Shared mistakes")
    assert not at.exception
    assert f"Every chosen run gets **{both_wrong.sum()}** of {len(labels)}" in at.markdown[0].value
    assert both_wrong.any(), "the fixture's 2-epoch runs should make mistakes for this test to mean anything"
    table = at.dataframe[0].value
    assert table["shared mistakes"].sum() == both_wrong.sum()
    assert table["test images"].sum() == len(labels)
    assert len(at.get("image")) == min(both_wrong.sum(), 24)


def test_compare_shared_mistakes_refuses_runs_tested_on_other_images(finished_run, second_run):
    with np.load(second_run.predictions_path) as saved:
        arrays = dict(saved)
    arrays["source_ids"] = np.array([f"other-{i}" for i in range(len(arrays["labels"]))])
    np.savez(second_run.predictions_path, **arrays)
    at = open_page("compare", compare_tabs="Shared mistakes")
    assert not at.exception
    assert "tested on different images" in at.warning[0].value


def test_compare_refuses_runs_with_other_classes(finished_run, second_run):
    rewrite_status(second_run, "finished", class_names=["cats", "dogs", "birds"])
    at = open_page("compare")
    assert not at.exception
    assert "cannot be compared: they answer with different classes" in at.error[0].value
    assert not at.tabs and not at.dataframe  # refused: no tab is drawn


def test_clearing_the_dropped_files_empties_the_uploader(finished_run):
    at = open_page("classify")
    at.file_uploader(key="classify_uploads_0").set_value([("galaxy.jpg", mixed_uploads()[0][1], "image/jpeg")]).run()
    assert len(at.dataframe[0].value) == 1
    at.button[0].click().run()
    assert not at.exception and not at.dataframe
    assert at.file_uploader(key="classify_uploads_1").value in (None, [])


def test_compare_labels_draws_a_line_per_way_of_starting(finished_run, second_run):
    at = open_page("compare", compare_tabs="Labels")
    assert not at.exception and "needs runs on the same images trained on different numbers" in at.info[0].value
    config = json.loads((second_run.path / "config.json").read_text())
    config.update(kind="transfer", options={"base_run": finished_run.id}, train_per_class=5)
    (second_run.path / "config.json").write_text(json.dumps(config))
    rewrite_status(second_run, "finished", dataset_sizes={"train": 15, "val": 9, "test": 9})
    at = open_page("compare", compare_tabs="Labels")
    assert not at.exception
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    lines = {trace["name"]: trace["x"] for trace in figure["data"]}
    scratch = finished_run.summary()
    assert lines == {
        "from scratch, custom_cnn": [scratch.train_images],
        f"from run {scratch.short_id}": [15],
    }
    assert scratch.train_images == finished_run.progress()["dataset_sizes"]["train"] > 15


def test_a_transfer_run_classifies_uploads_and_exports_its_whole_network(finished_transfer, isolated_settings):
    at = open_page("classify", classify_run=finished_transfer.id, classify_export="keras")
    at.button(key="classify_prepare").click().run()
    assert not at.exception
    assert any(b.proto.label.startswith("Download") for b in at.get("download_button"))
    from galaxy_core.answers.export import export_run
    from galaxy_core.answers.prediction import load_model_file

    model = load_model_file(export_run(finished_transfer, "keras", isolated_settings["cache"] / "export"))
    names = [layer.name for layer in model.layers]
    assert names[0] == "image" and "block1_conv1" in names and names[-2:] == ["logits", "probabilities"]


def test_compare_makes_an_ensemble_of_the_chosen_runs(finished_run, second_run, isolated_settings):
    at = open_page("compare", compare_runs=[finished_run.id, second_run.id])
    at.button(key="compare_make_ensemble").click().run()
    assert not at.exception and "Queued the ensemble of 2 runs" in at.success[0].value
    queued = [s for s in RunStore(isolated_settings["runs"]).runs() if s.kind == "ensemble"]
    assert [summary.options["members"] for summary in queued] == [[finished_run.id, second_run.id]]


def test_an_ensemble_classifies_with_its_members_averaged(finished_ensemble):
    at = open_page("classify", classify_run=finished_ensemble.id, classify_source="From the dataset")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert len(table) == 4
    # Worked out apart from the page: each image's answer from each member's own model file, averaged.
    from galaxy_core.answers.prediction import load_model_file, predict_probabilities
    from galaxy_core.data import create_dataset

    store = RunStore(finished_ensemble.path.parent)
    ids = finished_ensemble.summary().options["members"]
    members = [load_model_file(store.get(run_id).best_model_path) for run_id in ids]
    dataset = create_dataset(finished_ensemble.summary().dataset)
    images = {
        str(source): image
        for split in dataset.splits.values()
        for source, image in zip(split.source_ids, split.images, strict=True)
    }
    shown = np.stack([images[name.split(" (true")[0]] for name in table["file"]])
    expected = (predict_probabilities(members[0], shown) + predict_probabilities(members[1], shown)) / 2
    np.testing.assert_allclose(table[["p(edge)", "p(smooth)", "p(spiral)"]].to_numpy(float), expected, atol=1e-4)
