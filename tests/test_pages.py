"""Every page runs under Streamlit's AppTest without an exception and shows what it must."""

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from galaxy_core.answers.inference import balanced_accuracy_interval_of
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import DatasetSpec, spec_to_link
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run
from pages.ui.display import plain
from pages.ui.navigation import LAB_PAGES
from tests.helpers import PAGE_TIMEOUT, REPO_ROOT, open_page, unescaped, write_image_folder

SMALL_SYNTHETIC = DatasetSpec.of("synthetic", num_images=60).with_preprocess(image_size=32)


def test_every_page_file_is_listed_once_and_hands_over_to_the_router_when_run_alone():
    # After a server start, a session starting on /name runs pages/name.py alone (see pages/ui/navigation.py).
    files = sorted(p.stem for p in (REPO_ROOT / "pages").glob("*.py"))
    assert files == sorted(page.url_path for page in LAB_PAGES)
    for name in files:
        text = (REPO_ROOT / "pages" / f"{name}.py").read_text()
        assert "\ndef render(viewer" in text
        assert text.endswith(
            'if __name__ == "__main__":  # a session that starts on this page\'s URL right after a '
            "server start\n    run_router()\n"
        )


def test_home_says_what_the_lab_is_and_where_to_go():
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Galaxy CNN Lab"
    assert any("synthetic, normal, 64 px, RGB" in unescaped(m.value) for m in at.markdown)
    assert any("synthetic, normal, 64 px, RGB" in unescaped(m.value) for m in at.sidebar.markdown)


def test_a_new_session_starts_on_the_configured_default_dataset(isolated_settings, monkeypatch):
    write_image_folder(isolated_settings["data"] / "mine", {"a": 4, "b": 4})
    monkeypatch.setenv("GALAXY_LAB_DEFAULT_DATASET", "mine")
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not at.exception
    assert any("mine, 64 px, RGB" in m.value for m in at.sidebar.markdown)
    assert not at.sidebar.warning
    assert any("New sessions start on: mine" in code.value for code in at.code)  # the settings, for the teacher
    at = open_page("dataset")  # a new session: the Dataset page opens on it too, with its images
    assert not at.exception
    assert at.selectbox[0].value == "mine (folder)"
    assert at.metric[0].value == "2"  # classes


def test_a_session_opened_from_a_link_starts_on_its_dataset_and_keeps_it_in_the_url(isolated_settings):
    mine = write_image_folder(isolated_settings["data"] / "mine", {"a": 4, "b": 4})
    link = spec_to_link(DatasetSpec.of("folder", path=str(mine)).with_preprocess(image_size=32, channels=1))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT)
    at.query_params["dataset"] = link
    at.run()
    assert not at.exception and not at.sidebar.warning
    assert any("mine, 32 px, grayscale" in m.value for m in at.sidebar.markdown)
    assert at.query_params["dataset"] == link
    outside = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT)
    outside.query_params["dataset"] = spec_to_link(DatasetSpec.of("folder", path="/etc"))
    outside.run()
    assert "The link's dataset cannot be used" in outside.sidebar.warning[0].value
    assert str(isolated_settings["data"]) not in outside.sidebar.warning[0].value  # no server folder named
    missing = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT)
    missing.query_params["dataset"] = spec_to_link(DatasetSpec.of("folder", path=str(mine.parent / "gone")))
    missing.run()
    assert "is not in the lab's data folders" in missing.sidebar.warning[0].value.replace("\\", "")
    assert str(isolated_settings["data"]) not in missing.sidebar.warning[0].value.replace("\\", "")
    assert any("synthetic, normal, 64 px, RGB" in m.value for m in outside.sidebar.markdown)
    huge = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT)
    huge.query_params["dataset"] = '{"name":"synthetic","num_images":100000,"image_size":512}'  # 157 GB to load
    huge.run()
    assert not huge.exception
    assert "above this server's limit of 2,048 MB" in huge.sidebar.warning[0].value
    assert any("synthetic, normal, 64 px, RGB" in m.value for m in huge.sidebar.markdown)


def test_the_dataset_pages_knobs_cannot_ask_for_more_memory_than_the_server_allows():
    too_big = DatasetSpec.of("synthetic", num_images=100_000).with_preprocess(image_size=224, crop_fraction=0.5)
    at = open_page("dataset", active_dataset_spec=too_big)
    assert not at.exception
    shown = unescaped(at.error[0].value)
    assert "This dataset cannot be loaded:" in shown and "(dataset_memory_mb)" in shown


def test_a_missing_default_dataset_falls_back_to_synthetic_with_a_note(monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_DEFAULT_DATASET", "not-here")
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not at.exception
    assert any("synthetic, normal, 64 px, RGB" in unescaped(m.value) for m in at.sidebar.markdown)
    shown = unescaped(at.sidebar.warning[0].value)
    assert "default dataset" in shown and "'not-here'" in shown


def test_home_reports_unusable_settings(monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_UPLOAD_LIMIT_MB", "none")
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not at.exception
    assert "settings cannot be used" in at.error[0].value


def test_dataset_page_opens_on_the_default_synthetic_set():
    at = open_page("dataset")
    assert not at.exception
    assert [m.value for m in at.metric] == ["3", "64 x 64 x 3", "2,400", "300", "300"]
    counts = at.dataframe[0].value  # images and share of each class per split
    assert counts["class"].tolist() == ["edge", "smooth", "spiral"] and counts["train"].sum() == 2400
    assert counts["test share"].sum() == pytest.approx(1.0)
    assert not at.warning  # balanced classes: no imbalance warning


def test_browse_tab_shows_a_grid_and_a_closer_look():
    at = open_page("dataset", active_dataset_spec=SMALL_SYNTHETIC, dataset_tab="Browse")
    assert not at.exception
    assert len(at.get("image")) == 16 + 1  # 16 training edge-on galaxies and the enlarged one
    assert any("synthetic-0-" in unescaped(m.value) and "original size" in m.value for m in at.markdown)
    class_selector = next(s for s in at.selectbox if s.label == "Class")
    class_selector.select(2).run()  # spiral
    assert not at.exception
    closer = next(s for s in at.selectbox if s.label == "Look closer at")
    assert "**class** spiral" in next(m.value for m in at.markdown if "Source id" in m.value)
    assert len(closer.options) == 16


def test_augmentation_tab_shows_the_original_and_eleven_variants():
    at = open_page("dataset", active_dataset_spec=SMALL_SYNTHETIC, dataset_tab="Augmentation")
    assert not at.exception
    assert len(at.get("image")) == 12
    at.checkbox[0].uncheck().run()
    assert not at.exception


def test_grayscale_tab_compares_rgb_and_gray():
    at = open_page("dataset", active_dataset_spec=SMALL_SYNTHETIC, dataset_tab="RGB vs grayscale")
    assert not at.exception
    assert len(at.get("image")) == 3 * 12
    gray_spec = SMALL_SYNTHETIC.with_preprocess(channels=1)
    gray = open_page("dataset", active_dataset_spec=gray_spec, dataset_tab="RGB vs grayscale")
    assert "already" not in str(gray.info) and "loaded in grayscale" in gray.info[0].value


def test_statistics_tab_shows_mean_images_and_histograms():
    at = open_page("dataset", active_dataset_spec=SMALL_SYNTHETIC, dataset_tab="Statistics")
    assert not at.exception
    assert len(at.get("image")) == 3
    assert len(at.get("plotly_chart")) == 1
    at.selectbox[-1].select("spiral").run()
    assert not at.exception


def test_load_form_applies_new_preprocessing():
    at = open_page("dataset", active_dataset_spec=SMALL_SYNTHETIC)
    at.selectbox[1].select(48)
    at.radio[0].set_value(1)
    at.button[0].click().run()
    assert not at.exception
    assert at.metric[1].value == "48 x 48 x 1"
    assert at.session_state["active_dataset_spec"].preprocess.channels == 1


def test_folder_in_a_data_root_with_skipped_files_and_imbalance(isolated_settings):
    root = write_image_folder(isolated_settings["data"] / "mine", {"big": 40, "small": 6})
    (root / "small" / "broken.png").write_bytes(b"")
    at = open_page("dataset")
    at.selectbox[0].select("mine (folder)").run()
    assert not at.exception
    assert "big** is 89%" in at.warning[0].value  # 32 of 36 training images
    assert at.expander[0].label == "1 file(s) were skipped"


@pytest.mark.parametrize("typed", ["../../etc", "/etc", "mine/../.."])
def test_typed_paths_outside_the_data_roots_are_refused(typed, isolated_settings):
    at = open_page("dataset")
    at.selectbox[0].select("Another folder in a data root…").run()
    assert str(isolated_settings["data"]) not in at.info[0].value  # the server's folders are not a student's business
    at.text_input[0].input(typed).run()
    assert not at.exception
    assert "in a folder the lab does not serve from" in at.error[0].value
    assert str(isolated_settings["data"]) not in at.error[0].value
    at.text_input[0].input("no-such-dataset").run()
    assert "is not in the lab's data folders" in at.error[0].value
    assert str(isolated_settings["data"]) not in at.error[0].value


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("mine\0../etc", "contains a control character"),
        ("x" * 5000, "is 5,000 characters long; at most 1,024"),
        ("a/" + "b" * 300, "is not in the lab's data folders"),  # a name too long for the file system
    ],
)
def test_typed_paths_that_no_file_system_call_should_see_are_refused(typed, reason):
    at = open_page("dataset")
    at.selectbox[0].select("Another folder in a data root…").run()
    at.text_input[0].input(typed).run()
    assert not at.exception
    assert reason in unescaped(at.error[0].value)


def test_a_folder_that_cannot_be_a_dataset_is_explained(isolated_settings):
    (isolated_settings["data"] / "empty" / "a").mkdir(parents=True)
    (isolated_settings["data"] / "empty" / "b").mkdir()
    at = open_page("dataset")
    at.selectbox[0].select("empty (folder)").run()
    assert not at.exception
    assert "no images" in at.error[0].value


def test_architecture_overview_shows_sizes_and_costs():
    at = open_page("architecture")
    assert not at.exception
    labels = ["Parameters at 50 px", "Trainable", "Weights in memory", "Multiply-adds / image"]
    assert [m.label for m in at.metric] == labels
    assert at.metric[0].value == "4,353,475"  # the Tutorial at 50 px, the report's count
    at.number_input(key="architecture_size_tutorial").set_value(64).run()
    # By hand: two valid 3x3 convolutions and a 2x2 pooling leave (64 - 4) / 2 = 30 px of 64 maps at 64 px, and
    # 23 px at 50 px; flattened into 128 units: (30 x 30 - 23 x 23) x 64 x 128 more weights.
    assert at.metric[0].label == "Parameters at 64 px"
    assert at.metric[0].value == f"{4_353_475 + (30 * 30 - 23 * 23) * 64 * 128:,}"
    assert any("Test accuracy in the report**: 76.50%" in m.value for m in at.markdown)


def test_architecture_layers_diagram_and_explanations():
    layers = open_page("architecture", architecture_tab="Layers", architecture_model="practice1")
    assert not layers.exception
    table = layers.dataframe[0].value
    assert list(table["name"])[:3] == ["image", "preprocess", "block1_conv1"]
    assert table["parameters"].sum() == 140_707
    diagram = open_page("architecture", architecture_tab="Diagram", architecture_model="resnet_small")
    assert '"stage1_block1_b_bn" -> "stage1_block1_add"' in diagram.get("graphviz_chart")[0].proto.spec
    explained = open_page("architecture", architecture_tab="What the layers do", architecture_model="resnet_small")
    text = " ".join(m.value for m in explained.markdown)
    assert "**Add**" in text and "**Conv2D**" in text and "**Loss**" in text


def test_architecture_compare_two_models():
    at = open_page("architecture", architecture_tab="Compare")
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 2 and table["parameters"].iloc[0] == 4_353_475


def test_architecture_symmetry_shows_a_p4m_network_answering_alike_at_every_quarter_turn(isolated_settings):
    """No runs yet: an untrained plain network and an untrained p4m one. The p4m network's answers at 0, 90, 180
    and 270 degrees are the same (the page's figure, and the chart's points read here); the plain one's are not."""
    at = open_page("architecture", architecture_tab="Symmetry")
    assert not at.exception
    spreads = [float(c.value.rsplit(": ", 1)[1].rstrip(".")) for c in at.caption if "four quarter turns" in c.value]
    assert len(spreads) == 2 and spreads[1] < 1e-4 < spreads[0], spreads
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    p4m_lines = [trace["y"] for trace in charts[1]["data"]]
    angles = charts[1]["data"][0]["x"]
    for line in p4m_lines:
        quarters = [line[angles.index(angle)] for angle in (0, 90, 180, 270)]
        assert max(quarters) - min(quarters) < 1e-4
    assert "untrained p4m_cnn" in charts[1]["layout"]["title"]["text"]
    assert len(at.get("image")) >= 8 + 2  # the filter in 8 orientations, the two rows of feature maps


def test_custom_cnn_knobs_and_a_clear_error_for_impossible_settings():
    at = open_page("architecture", architecture_model="custom_cnn")
    assert not at.exception
    before = at.metric[0].value
    at.slider(key="architecture_blocks").set_value(4).run()
    assert not at.exception and at.metric[0].value != before
    at.number_input(key="architecture_size_custom_cnn").set_value(8).run()
    assert "needs at least 16 px" in at.error[0].value


def test_train_page_queues_a_run_that_trains_in_the_background(isolated_settings):
    at = open_page("train", active_dataset_spec=SMALL_SYNTHETIC.with_preprocess(image_size=16))
    assert not at.exception
    assert "No runs yet" in at.info[0].value
    at.radio(key="train_recipe").set_value("own").run()
    at.selectbox(key="train_model").select("custom_cnn").run()
    at.number_input[0].set_value(1)  # epochs
    at.button[0].click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Queued run ")
    runs = [path for path in isolated_settings["runs"].iterdir() if path.is_dir()]
    assert len(runs) == 1 and (runs[0] / "config.json").is_file()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and '"finished"' not in (runs[0] / "status.json").read_text():
        time.sleep(0.5)
    at.run()
    assert not at.exception
    assert any(": finished · custom_cnn" in m.value for m in at.markdown)
    assert [m.label for m in at.metric] == ["Test accuracy", "Test balanced accuracy", "Best val balanced accuracy"]
    low, high = balanced_accuracy_interval_of(RunStore(isolated_settings["runs"]).get(runs[0].name))
    assert any(f"95% interval: {low:.1%} to {high:.1%}" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1


def test_train_page_with_runs_opens_on_them_and_draws_the_new_run_form_when_asked(finished_run, monkeypatch):
    from galaxy_core.training import estimate

    probes = []
    measuring = estimate.Measuring(seconds_so_far=0.0, expected_seconds=20.0, waiting=False)
    monkeypatch.setattr(estimate, "measure", lambda config, *_: probes.append(config) or measuring)
    at = open_page("train")
    assert not at.exception and at.dataframe[0].value["run"].tolist() == [finished_run.id]
    assert at.expander[0].label == "New run" and not at.radio  # closed: nothing drawn, nothing measured
    assert probes == []
    at.session_state["train_new_run"] = True  # the user opens it
    at.run()
    assert not at.exception and at.radio(key="train_recipe").value == "recommended"
    assert probes  # the chosen recipe's speed is measured now


@pytest.mark.throughput_probe
def test_train_page_never_probes_while_a_run_trains_and_reads_a_recent_runs_pace(isolated_settings, monkeypatch):
    """No throughput probe while a run is queued or trains (it would slow the run): the page says when it will
    measure; a run of the chosen recipe's step cost that trained whole epochs after its first gives the pace
    instead."""
    import subprocess

    from galaxy_core.training import estimate
    from galaxy_core.training.config import preset_config
    from tests.helpers import rewrite_status, run_in_its_first_epoch, tiny_config

    def probes() -> list:
        return [key for key in estimate._probes if key[1] == str(isolated_settings["cache"])]

    store = RunStore(isolated_settings["runs"])
    # A queued run (it cannot start here: its executor is a Ray cluster that is not there), then one training.
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    queued = new_run(store, tiny_config(), MACHINE_TEACHER)
    at = open_page("train", train_new_run=True)
    assert not at.exception and at.radio(key="train_recipe").value == "recommended"
    assert any("measured once no run is queued or training" in caption.value for caption in at.caption)
    assert probes() == []
    rewrite_status(queued, "stopped")
    stand_in = subprocess.Popen(["sleep", "120"])
    try:
        run_in_its_first_epoch(isolated_settings["runs"], stand_in.pid)
        at = open_page("train", train_new_run=True)
        assert not at.exception and at.radio(key="train_recipe").value == "recommended"
        assert any("measured once no run is queued or training" in caption.value for caption in at.caption)
        assert probes() == []
    finally:
        stand_in.kill()
    for summary in store.runs():
        rewrite_status(summary.run, "stopped")
    earlier = new_run(
        store, preset_config(DatasetSpec.of("synthetic"), "recommended", epochs=3, seed=7), MACHINE_TEACHER
    )
    for epoch, training, validation in ((1, 5.0, 50.0), (2, 100.0, 1000.0), (3, 300.0, 3000.0)):
        earlier.append_metrics(
            {
                "kind": "epoch",
                "epoch": epoch,
                "training_images_per_second": training,
                "validation_images_per_second": validation,
            }
        )
    rewrite_status(earlier, "finished", epochs_done=3)
    # A probe's figure is there too (say, timed while the machine was busy): the run's own pace goes first.
    recommended = preset_config(DatasetSpec.of("synthetic"), "recommended")
    estimate.save_throughput(recommended, isolated_settings["cache"], estimate.Throughput(50.0, 500.0))
    at = open_page("train", train_new_run=True)
    assert not at.exception and probes() == []
    # The median of its epochs after the first: (100 + 300) / 2; the first, which builds the graph, left out.
    assert any(f"(200 training images/s, as run {earlier.id} trained" in c.value for c in at.caption)


def test_train_page_shows_a_failed_run_with_its_reason(isolated_settings):
    from galaxy_core.training import RunStore
    from tests.helpers import tiny_config

    run = new_run(RunStore(isolated_settings["runs"]), tiny_config(), MACHINE_TEACHER)
    run.move_to("failed", error="ValueError: something broke", traceback="Traceback ...")
    at = open_page("train")
    assert not at.exception
    assert "The run failed: ValueError: something broke" in unescaped(at.error[0].value)


def test_train_page_shows_the_first_epoch_under_way(isolated_settings):
    """Before its first epoch ends, a run shows its batches in the table and the progress bar, an ETA, and its
    training curve by batch (a live stand-in process keeps it running for the service)."""
    import subprocess

    from tests.helpers import run_in_its_first_epoch

    stand_in = subprocess.Popen(["sleep", "120"])
    try:
        run_in_its_first_epoch(isolated_settings["runs"], stand_in.pid)
        at = open_page("train")
        assert not at.exception
        assert at.dataframe[0].value["epochs"].tolist() == ["0/3, batch 12/40"]
        progress = at.get("progress")[0].proto
        assert "epoch 1 of at most 3, batch 12/40" in progress.text and "about 5.0 min left" in progress.text
        assert progress.value == 10  # 12 of 40 batches of 3 epochs: 10%
        assert any("Until the first epoch ends" in caption.value for caption in at.caption)
    finally:
        stand_in.kill()


def test_train_page_says_why_queued_runs_wait_and_keeps_them(isolated_settings, monkeypatch):
    from galaxy_core.training.client import ServiceClient
    from tests.helpers import tiny_config, wait_for

    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    client = ServiceClient(isolated_settings["runs"])
    run = client.submit(tiny_config(), MACHINE_TEACHER)
    wait_for(lambda: client.service().problem, timeout=30)
    at = open_page("train")
    assert not at.exception
    shown = unescaped(at.warning[0].value)
    assert shown.startswith("Training service: queued runs wait: cannot reach the Ray cluster at 127.")
    assert "Queued: waiting for a training slot" in at.info[0].value
    at.button(key=f"stop_{run.id}").click().run()
    assert not at.exception
    assert run.summary().message == "stopped before it started"


def test_train_page_explains_a_model_too_big_for_the_images():
    at = open_page("train", active_dataset_spec=DatasetSpec.of("synthetic").with_preprocess(image_size=32))
    at.radio(key="train_recipe").set_value("own").run()
    at.selectbox(key="train_model").select("practice3").run()
    assert not at.exception
    assert "needs images of at least 50 px" in at.warning[0].value
    assert not at.button  # no Train button for settings that cannot train


def test_train_page_offers_presets_with_their_expected_duration(isolated_settings, monkeypatch):
    from galaxy_core.data import create_dataset
    from galaxy_core.training import estimate
    from galaxy_core.training.config import PRESETS, preset_config

    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # nothing can start: the queued run costs no CPU
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    spec = SMALL_SYNTHETIC.with_preprocess(image_size=16)
    at = open_page("train", active_dataset_spec=spec)
    assert not at.exception
    assert at.radio(key="train_recipe").value == "recommended"
    assert any("Measuring how fast this machine trains" in c.value for c in at.caption)
    assert any(
        f"Presets train at their own input size ({PRESETS['recommended'].image_size} px)" in c.value for c in at.caption
    )
    # With the quick preset's speed known (120 training images/s, 1200 predictions/s), its duration is worked out.
    quick = preset_config(spec, "quick")
    estimate.save_throughput(quick, isolated_settings["cache"], estimate.Throughput(120.0, 1200.0))
    at.radio(key="train_recipe").set_value("quick").run()
    splits = create_dataset(spec, cache_dir=isolated_settings["cache"]).splits
    sizes = {name: len(split) for name, split in splits.items()}
    seconds = estimate.expected_seconds(quick, estimate.Throughput(120.0, 1200.0), sizes)
    assert any(f"about **{seconds:.0f} s** for {quick.epochs} epochs" in c.value for c in at.caption)
    # Three networks of it as one run (a seed ensemble): three times the work, one start-up.
    at.number_input(key="quick_networks").set_value(3).run()
    ensemble_seconds = estimate.FIXED_SECONDS + 3 * (seconds - estimate.FIXED_SECONDS)
    duration = f"{ensemble_seconds:.0f} s" if ensemble_seconds < 90 else f"{ensemble_seconds / 60:.0f} min"
    assert any(f"about **{duration}** for {3 * quick.epochs} epochs" in c.value for c in at.caption)
    at.button(key="train_quick").click().run()
    assert not at.exception and at.success[0].value.startswith("Queued run ")
    at.button(key="train_quick").click().run()  # the second click of a double click queues nothing more
    assert "was queued by this press already" in at.success[0].value
    run_dirs = [path for path in isolated_settings["runs"].iterdir() if path.is_dir() and not path.name.startswith(".")]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    config = __import__("json").loads((run_dir / "config.json").read_text())
    assert (config["model"], config["epochs"], config["dataset"]["image_size"]) == (
        quick.model,
        quick.epochs,
        PRESETS["quick"].image_size,
    )
    assert (config["kind"], config["options"]["ensemble_size"]) == ("seed_ensemble", 3)


def test_train_page_starts_a_run_from_a_finished_one(finished_run, isolated_settings, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")  # nothing can start: the queued run costs no CPU
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", "127.0.0.1:9")
    at = open_page("train", train_new_run=True, active_dataset_spec=SMALL_SYNTHETIC.with_preprocess(image_size=48))
    at.radio(key="train_recipe").set_value("from_run").run()
    assert not at.exception
    assert at.selectbox(key="train_base_run").value == finished_run.id
    assert any("read at the base's input size (the Dataset page's 48 px does not apply)" in c.value for c in at.caption)
    assert at.selectbox(key="train_base_cut").value == "head_dropout"  # what fed its classifier
    at.selectbox(key="train_unfreeze_from").select("block2_conv1").run()
    plan = at.dataframe[0].value
    roles = dict(zip(plan["layer"], plan["role"], strict=False))
    assert (roles["block1_conv1"], roles["block2_conv1"], roles["block2_bn1"]) == ("frozen", "fine-tuned", "frozen")
    at.radio(key="transfer_few_labels").set_value("per class").run()
    at.number_input(key="transfer_n").set_value(5).run()
    at.button(key="train_from_run").click().run()
    assert not at.exception and at.success[0].value.startswith("Queued run ")
    run_id = at.success[0].value.removeprefix("Queued run ").split(" ")[0]
    config = json.loads((isolated_settings["runs"] / run_id / "config.json").read_text())
    options = config["options"]
    assert (config["kind"], options["base_run"], options["unfreeze_from"], config["train_per_class"]) == (
        "transfer",
        finished_run.id,
        "block2_conv1",
        5,
    )
    assert config["dataset"]["image_size"] == 32
    at.run()  # its next redraw shows the queued run, with its base
    links = [link.proto.label for link in at.get("page_link")]
    assert any(label.startswith(f"Started from run {plain(finished_run.summary().short_id)} (") for label in links)


def test_the_transfer_recipe_says_when_no_run_can_be_a_base(isolated_settings):
    at = open_page("train", train_new_run=True)
    at.radio(key="train_recipe").set_value("from_run").run()
    assert not at.exception and "No run has kept a model yet" in at.info[0].value


def test_convolution_playground_works_out_sizes_and_explains_bad_kernels():
    at = open_page("playground", active_dataset_spec=SMALL_SYNTHETIC)
    assert not at.exception
    assert any("floor((32 - 3) / 1) + 1 = 30 px" in m.value for m in at.markdown)
    at.radio(key="playground_padding").set_value("same").run()
    at.select_slider(key="playground_stride").set_value(2).run()
    at.radio(key="playground_pooling").set_value("max").run()
    assert any("ceil(32 / 2) = 16" in m.value and "max pooling: 8 px" in m.value for m in at.markdown)
    at.selectbox(key="playground_kernel").set_value("type your own").run()
    at.text_area[0].set_value("1 2 x\n1 2 3\n1 2 3").run()
    assert not at.exception and "This is not a kernel: a kernel holds numbers only" in at.error[0].value


def test_convolution_playground_takes_a_dropped_image_and_draws_a_receptive_field():
    from tests.uploads import encode, galaxy_photo, zip_of

    at = open_page("playground", active_dataset_spec=SMALL_SYNTHETIC)
    at.file_uploader(key="playground_upload").set_value([("mine.png", b"not an image", "image/png")]).run()
    assert not at.exception and "**mine.png** cannot be used:" in unescaped(at.warning[0].value)
    photo = encode(galaxy_photo(96), "PNG")
    # An archive under an image's name: its first image is used; an empty one is said.
    bundle = zip_of({"notes.txt": b"hi", "a.png": photo, "b.png": photo})
    at.file_uploader(key="playground_upload").set_value([("bundle.png", bundle, "image/png")]).run()
    assert not at.exception and not at.warning
    used = "bundle.png holds 3 files: the first image, bundle.png/a.png, is used"
    assert any(used in unescaped(c.value) for c in at.caption)
    at.file_uploader(key="playground_upload").set_value([("empty.png", zip_of({}), "image/png")]).run()
    refused = "**empty.png** cannot be used: the archive holds no image files"
    assert not at.exception and refused in unescaped(at.warning[0].value)
    at.file_uploader(key="playground_upload").set_value([("mine.png", photo, "image/png")]).run()
    assert not at.exception and not at.warning
    assert any("floor((32 - 3) / 1) + 1 = 30 px" in m.value for m in at.markdown)  # resized as the dataset's
    assert not any("Galaxy (of" in n.label for n in at.number_input)  # the dropped image replaces the choice
    at.toggle(key="playground_field").set_value(True).run()
    at.selectbox(key="playground_field_model").select("custom_cnn").run()
    assert not at.exception
    at.selectbox(key="playground_field_layer_custom_cnn").select("block1_conv1").run()
    assert any("sees a **3x3 px** square of the 32 px input" in m.value for m in at.markdown)


def test_convolution_playground_shows_a_trained_runs_first_layer_on_the_galaxy(finished_run):
    at = open_page("playground", active_dataset_spec=SMALL_SYNTHETIC.with_preprocess(channels=1))
    assert not at.exception and "TensorFlow" in at.caption[-1].value
    at.toggle(key="playground_trained").set_value(True).run()
    assert not at.exception
    assert any("kernels of 3x3 learned by custom_cnn" in m.value and "(32 px in" in m.value for m in at.markdown)
    assert len(at.get("image")) == 1 + 2 * 8  # the galaxy, then 8 kernels and their 8 maps


def test_home_offers_the_real_galaxies_when_a_session_is_on_the_synthetic_ones(isolated_settings):
    write_image_folder(isolated_settings["data"] / "classroom", {"edge": 3, "smooth": 3})
    at = open_page("home")
    assert not at.exception
    button = next(b for b in at.button if b.key == "home_real_galaxies")
    assert unescaped(button.label) == "Use the real galaxies: classroom (folder)"
    button.click().run()
    assert at.session_state["active_dataset_spec"].source == "folder"
    assert "home_real_galaxies" not in [b.key for b in at.button]  # on real galaxies now: nothing to offer


def test_the_server_spares_each_rerun_keras_full_garbage_collection(monkeypatch):
    """Streamlit clears Keras's session after every script run of every session; Keras's own clear_session then
    collects all garbage (0.3 s of CPU per refresh in a server with TensorFlow loaded)."""
    import gc

    import keras

    from pages.ui.state import spare_reruns_keras_garbage_collection

    spare_reruns_keras_garbage_collection()  # as an app run earlier in this process may have done
    original = keras.backend.clear_session.__wrapped__  # Keras's own, put back after the test
    monkeypatch.setattr(keras.backend, "clear_session", original)
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or 0)
    keras.backend.clear_session()
    assert collections  # Keras's own: a full collection
    spare_reruns_keras_garbage_collection()
    spare_reruns_keras_garbage_collection()  # once is enough: a second call wraps nothing again
    collections.clear()
    keras.layers.Dense(1)
    keras.backend.clear_session()
    assert collections == []
    assert keras.layers.Dense(1).name == "dense"  # Keras's names are still reset
