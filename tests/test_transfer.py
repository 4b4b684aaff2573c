"""Transfer from a trained run: the base stays as it was where it is frozen, only the chosen layers change when
unfrozen, the new head fits the new classes, a base that cannot be one is refused with why, the base's features are
cached and never trusted blindly, and few-label subsets are stratified and seeded."""

import json

import numpy as np
import pytest

from galaxy_core.answers.prediction import load_model_file, predict_probabilities
from galaxy_core.classroom.people import MACHINE_TEACHER, User
from galaxy_core.data import DatasetSpec, create_dataset
from galaxy_core.errors import InvalidInputError
from galaxy_core.training import RunStore, TrainConfig
from galaxy_core.training.client import ServiceClient, new_run, train_in_this_process
from galaxy_core.training.features import base_features, model_digest, prune
from galaxy_core.training.kinds import describe_run_model
from galaxy_core.training.kinds.transfer import base_layers, feature_model, transfer_config, transfer_plan
from galaxy_core.training.recipe import few_labels
from tests.helpers import give_run, rewrite_status, write_image_folder

HEAD_LAYERS = {"logits", "probabilities"}


def weights_by_layer(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def same(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def queue_transfer(runs, base_run, **overrides):
    config = transfer_config(RunStore(runs).get(base_run.id).summary(), epochs=2, **overrides)
    return new_run(RunStore(runs), config, MACHINE_TEACHER)


def test_a_head_on_a_frozen_base_leaves_every_base_weight_bit_identical(isolated_settings, finished_run):
    run = queue_transfer(isolated_settings["runs"], finished_run)
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    base, network = load_model_file(finished_run.best_model_path), load_model_file(run.best_model_path)
    before, after = weights_by_layer(base), weights_by_layer(network)
    kept = set(after) - HEAD_LAYERS
    assert kept and kept <= set(before)
    assert all(same(before[name], after[name]) for name in kept)  # batch normalisation's statistics among them
    assert not same(before["logits"], after["logits"])  # the head is new and trained
    assert network.output.shape[-1] == 3
    summary = run.summary()
    assert summary.base_run == finished_run.id and summary.has_test_results
    assert describe_run_model(summary.config) == f"custom_cnn from run {finished_run.summary().short_id}"
    assert (run.path / "base.keras").read_bytes() == finished_run.best_model_path.read_bytes()  # its own copy
    assert run.final_model_path.read_bytes() == run.best_model_path.read_bytes()  # frozen: saved once, copied
    assert summary.is_light  # a head on cached features: a light slot's run
    assert not queue_transfer(isolated_settings["runs"], finished_run, unfreeze_from="block2_conv1").summary().is_light
    # Its test answers (the head's, on cached features of the 8 views) are the saved whole network's.
    saved, test = (
        run.predictions(),
        create_dataset(summary.dataset, cache_dir=isolated_settings["cache"]).splits["test"],
    )
    np.testing.assert_allclose(saved["probabilities"], predict_probabilities(network, test.images), atol=1e-5)
    np.testing.assert_allclose(
        saved["tta_probabilities"], predict_probabilities(network, test.images, tta=True), atol=1e-5
    )


def test_unfreezing_trains_the_chosen_layers_and_no_other(isolated_settings, finished_run):
    base = load_model_file(finished_run.best_model_path)
    names = [layer.name for layer in base.layers]
    unfreeze_from = "block2_conv1"
    assert unfreeze_from in names
    run = queue_transfer(isolated_settings["runs"], finished_run, unfreeze_from=unfreeze_from, fine_tune_epochs=1)
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    assert run.summary().epochs_done == 3  # two epochs of the head, one of fine-tuning
    network = load_model_file(run.final_model_path)
    before, after = weights_by_layer(base), weights_by_layer(network)
    unfrozen = set(names[names.index(unfreeze_from) :])
    for name in set(after) - HEAD_LAYERS:
        is_norm = type(network.get_layer(name)).__name__ == "BatchNormalization"
        if name in unfrozen and not is_norm:
            assert not same(before[name], after[name]), f"{name} was to be fine-tuned"
        else:
            assert same(before[name], after[name]), f"{name} was to stay frozen"


def test_a_base_from_other_classes_gets_a_head_of_the_new_size(isolated_settings, finished_run):
    write_image_folder(isolated_settings["data"] / "two", {"round": 14, "flat": 14})
    dataset = DatasetSpec.from_dict({"name": "folder", "path": str(isolated_settings["data"] / "two")})
    config = transfer_config(finished_run.summary(), dataset, epochs=2, batch_size=8)
    assert config.dataset.preprocess.image_size == 32  # read at the base's size
    run = new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    assert load_model_file(run.best_model_path).output.shape[-1] == 2
    assert run.summary().class_names == ("flat", "round")


def test_a_dataset_at_another_size_is_refused_before_anything_is_queued(isolated_settings, finished_run):
    config = transfer_config(finished_run.summary())
    other_size = TrainConfig.from_dict({**config.to_dict(), "dataset": {**config.dataset.to_dict(), "image_size": 40}})
    with pytest.raises(InvalidInputError, match=r"takes 32 px images with 3 channel.*set to 40 px"):
        new_run(RunStore(isolated_settings["runs"]), other_size, MACHINE_TEACHER)
    assert RunStore(isolated_settings["runs"]).run_ids() == [finished_run.id]


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda run: rewrite_status(run, "running"), "still running"),
        (lambda run: run.best_model_path.write_bytes(b"not a model"), "damaged"),
        (lambda run: [run.best_model_path.unlink(), run.final_model_path.unlink()], "kept no model"),
        (lambda run: RunStore(run.path.parent).trash(run), "restored from the trash"),
    ],
    ids=["training", "damaged", "no model", "deleted"],
)
def test_a_base_that_cannot_be_one_is_refused_with_why(isolated_settings, finished_run, spoil, reason):
    config = transfer_config(finished_run.summary())
    spoil(finished_run)
    with pytest.raises(InvalidInputError, match=reason):
        new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)


def test_a_label_review_is_no_base(isolated_settings, finished_review):
    config = TrainConfig.from_dict({**transfer_config(finished_review.summary()).to_dict(), "kind": "transfer"})
    with pytest.raises(InvalidInputError, match="is a label review"):
        new_run(RunStore(isolated_settings["runs"]), config, MACHINE_TEACHER)


def test_another_students_deleted_run_is_no_base(isolated_settings, finished_run):
    ada, bob = User("ada", "Ada", "student"), User("bob", "Bob", "student")
    client = ServiceClient(isolated_settings["runs"])
    give_run(finished_run, ada)
    config = transfer_config(finished_run.summary())
    client.delete(finished_run.id, ada)
    with pytest.raises(InvalidInputError, match=r"no run .* to start from"):
        client.submit(config, bob)
    assert client.store.run_ids() == []


def test_the_feature_cache_is_reused_rebuilt_when_base_or_data_change_and_never_trusted(isolated_settings, tmp_path):
    import keras

    spec = {"name": "synthetic", "num_images": 30, "image_size": 16}
    dataset = create_dataset(DatasetSpec.from_dict(spec), cache_dir=isolated_settings["cache"])
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs)))
    path = tmp_path / "base.keras"
    model.save(path)
    digest, cache = model_digest(path), tmp_path / "cache"

    first = base_features(model, digest, "", dataset, cache)
    assert not first.cached
    test_images = dataset.splits["test"].images.astype("float32")
    np.testing.assert_allclose(first.splits["test"], model.predict(test_images, verbose=0), rtol=1e-5, atol=1e-6)
    turned = np.rot90(test_images, 1, axes=(1, 2))  # the second of the 8 views: a quarter turn
    np.testing.assert_allclose(first.test_views[1], model.predict(turned, verbose=0), rtol=1e-5, atol=1e-6)
    again = base_features(model, digest, "", dataset, cache)
    assert again.cached and all(np.array_equal(again.splits[name], first.splits[name]) for name in first.splits)
    assert np.array_equal(again.test_views, first.test_views)

    assert not base_features(model, "another base", "", dataset, cache).cached
    assert not base_features(model, digest, "another cut", dataset, cache).cached
    other_data = create_dataset(DatasetSpec.from_dict({**spec, "seed": 5}), cache_dir=isolated_settings["cache"])
    assert not base_features(model, digest, "", other_data, cache).cached

    files = sorted((cache / "features").glob("*.npz"))
    assert len(files) == 4
    for file in files:
        file.write_bytes(b"damaged")
    rebuilt = base_features(model, digest, "", dataset, cache)
    assert not rebuilt.cached
    assert all(np.allclose(rebuilt.splits[name], first.splits[name], atol=1e-6) for name in first.splits)


def test_a_cut_at_the_bases_own_classifier_is_refused(finished_run):
    base = load_model_file(finished_run.best_model_path)
    with pytest.raises(InvalidInputError, match="before its own classifier"):
        feature_model(base, "logits")
    with pytest.raises(InvalidInputError, match="no layer 'nowhere'"):
        feature_model(base, "nowhere")


def test_the_plan_says_what_is_frozen_fine_tuned_cut_off_and_new(finished_run):
    layers = base_layers(finished_run.best_model_path)
    assert layers[0] == ("image", "InputLayer") and layers[-2:] == [
        ("logits", "Dense"),
        ("probabilities", "Activation"),
    ]
    plan = [(row["layer"], row["role"]) for row in transfer_plan(layers, "features_out", "block2_conv1")]
    assert plan[-7:] == [
        ("features_out", "fine-tuned"),
        ("head_gap", "cut off"),
        ("head_dropout", "cut off"),
        ("logits", "cut off"),  # the base's classifier
        ("probabilities", "cut off"),
        ("logits", "new"),  # the new head's
        ("probabilities", "new"),
    ]
    roles = dict(plan[:-2])
    assert [roles[name] for name in ("block1_conv1", "block2_conv1", "block2_bn1", "block2_relu1")] == [
        "frozen",
        "fine-tuned",
        "frozen",  # batch normalisation stays in inference mode
        "fine-tuned",
    ]
    default = [row["role"] for row in transfer_plan(layers)]  # cut where the classifier was, nothing unfrozen
    assert default == ["frozen"] * (len(layers) - 2) + ["cut off", "cut off", "new", "new"]
    with pytest.raises(InvalidInputError, match="keeps no layer 'head_gap'"):
        transfer_plan(layers, "features_out", "head_gap")
    assert base_layers(finished_run.path / "config.json") == []


def test_few_labels_are_stratified_seeded_and_recorded(isolated_settings):
    dataset = create_dataset(
        DatasetSpec.from_dict({"name": "synthetic", "num_images": 90, "image_size": 16}),
        cache_dir=isolated_settings["cache"],
    )
    train = dataset.splits["train"]
    counts = np.bincount(train.labels, minlength=3)

    def subset(**settings):
        return few_labels(dataset, TrainConfig(dataset=dataset.spec, model="custom_cnn", **settings)).splits["train"]

    per_class = subset(train_per_class=5, seed=1)
    assert np.bincount(per_class.labels, minlength=3).tolist() == [5, 5, 5]
    share = subset(train_fraction=0.5, seed=1)
    assert np.bincount(share.labels, minlength=3).tolist() == [round(0.5 * count) for count in counts]
    assert set(share.source_ids) <= set(train.source_ids)
    assert np.array_equal(subset(train_per_class=5, seed=1).source_ids, per_class.source_ids)  # seeded
    assert not np.array_equal(subset(train_per_class=5, seed=2).source_ids, per_class.source_ids)
    assert (
        dataset.splits["val"]
        is few_labels(dataset, TrainConfig(dataset.spec, "custom_cnn", train_fraction=0.2)).splits["val"]
    )
    with pytest.raises(InvalidInputError, match=f"has {counts.min()}"):
        subset(train_per_class=int(counts.max()) + 1)
    with pytest.raises(InvalidInputError, match="not both"):
        TrainConfig(dataset=dataset.spec, model="custom_cnn", train_fraction=0.5, train_per_class=3)
    run = new_run(
        RunStore(isolated_settings["runs"]),
        TrainConfig(dataset=dataset.spec, model="custom_cnn", train_per_class=4),
        MACHINE_TEACHER,
    )
    assert json.loads((run.path / "config.json").read_text())["train_per_class"] == 4


def test_features_too_big_for_the_memory_budget_fail_the_run_saying_why(isolated_settings, finished_run, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_DATASET_MEMORY_MB", "1")
    run = queue_transfer(isolated_settings["runs"], finished_run, base_cut="block1_conv1")
    assert train_in_this_process(run) == "failed"
    assert "cut at a later layer" in run.summary().message and "dataset_memory_mb" in run.summary().message


def test_the_feature_cache_keeps_to_its_size_dropping_the_least_recently_used(tmp_path):
    import os

    sizes = {"old.npz": 400, "used.npz": 400, "new.npz": 400}
    for age, (name, size) in enumerate(sizes.items()):
        (tmp_path / name).write_bytes(bytes(size))
        os.utime(tmp_path / name, (1000 + age, 1000 + age))
    os.utime(tmp_path / "used.npz", (5000, 5000))  # read since: the most recently used
    assert [path.name for path in prune(tmp_path, 900)] == ["old.npz"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new.npz", "used.npz"]
    (tmp_path / "huge.npz").write_bytes(bytes(2000))
    assert sorted(path.name for path in prune(tmp_path, 900)) == ["new.npz", "used.npz"]  # the newest stays


def test_a_run_queued_before_kinds_had_options_reads_as_it_did(finished_transfer):
    """Such a run's config.json kept every kind's options beside the recipe, the other kinds' at their defaults."""
    path = finished_transfer.path / "config.json"
    nested = json.loads(path.read_text())
    own = nested.pop("options")
    others = {"folds": 5, "members": [], "weighting": "equal", "member_weights": [], "ensemble_size": 5}
    legacy = {**nested, **own, **others}
    path.write_text(json.dumps(legacy))
    summary = finished_transfer.summary()
    assert summary.options == own and summary.base_run == own["base_run"]
    assert describe_run_model(legacy) == describe_run_model({**nested, "options": own}) == describe_run_model(
        summary.config
    )
    config = TrainConfig.from_dict(legacy)
    assert (config.options.base_run, config.options.unfreeze_from) == (own["base_run"], own["unfreeze_from"])
    assert TrainConfig.from_dict(config.to_dict()) == config  # and it is written nested from then on
    with pytest.raises(InvalidInputError, match=r"unknown transfer options \['base'\]"):
        TrainConfig.from_dict({**nested, "options": {"base": own["base_run"]}})


def test_a_warm_workers_next_head_of_the_same_base_finds_it_loaded_and_trains_the_same(
    isolated_settings, finished_run, monkeypatch
):
    """Two heads of one base with the same seed in one process: the second reads no base file (it is loaded), and
    the two networks answer alike to the bit, as two fresh processes' would."""
    from galaxy_core.training.kinds import transfer

    monkeypatch.setattr(transfer, "_LOADED_BASE", {})
    runs = [queue_transfer(isolated_settings["runs"], finished_run, seed=3) for _ in range(2)]
    for run in runs:
        assert train_in_this_process(run) == "finished", run.status().get("traceback")
    assert "already loaded" not in runs[0].log_tail() and "already loaded" in runs[1].log_tail()
    first, second = (load_model_file(run.best_model_path) for run in runs)
    assert all(same(first.get_layer(n).get_weights(), w) for n, w in weights_by_layer(second).items())
    np.testing.assert_array_equal(runs[0].predictions()["probabilities"], runs[1].predictions()["probabilities"])
    fine_tuned = queue_transfer(isolated_settings["runs"], finished_run, unfreeze_from="block2_conv1")
    assert train_in_this_process(fine_tuned) == "finished"
    assert "already loaded" not in fine_tuned.log_tail()  # a base it changes is its own copy
