"""The app as a person uses it: a real Streamlit server driven by Debian's Chromium through Playwright.

A failing test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import (
    REPO_ROOT,
    browser_tabs,
    free_port,
    rewrite_status,
    start_server,
    stop_server,
    stop_training_service,
    wait_for,
    write_image_folder,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_base(tmp_path_factory) -> Path:
    """The app's folders: data/, cache/, runs/ (tests may add finished runs to runs/ while it serves)."""
    return tmp_path_factory.mktemp("browser")


def known_throughput(cache: Path) -> None:
    """This machine's speed for the recipes the tests show, as a throughput probe would have cached it: the Train
    page then states durations instead of probing (test_estimate.py tests the probe), and the tests' runs have the
    CPU to themselves."""
    from galaxy_core.data import DatasetSpec
    from galaxy_core.training import estimate
    from galaxy_core.training.config import PRESETS, preset_config, recommended_config

    spec = DatasetSpec.of("synthetic")
    for config in [*(preset_config(spec, name) for name in PRESETS), recommended_config(spec, "custom_cnn")]:
        estimate.save_throughput(config, cache, estimate.Throughput(200.0, 2000.0))


@pytest.fixture(scope="module")
def app_url(app_base):
    base = app_base
    write_image_folder(base / "data" / "classroom", {"edge": 12, "smooth": 30, "spiral": 10})
    known_throughput(base / "cache")
    env = {
        **os.environ,
        "GALAXY_LAB_SETTINGS": str(base / "none.toml"),
        "GALAXY_LAB_DATA_ROOTS": str(base / "data"),
        "GALAXY_LAB_CACHE_DIR": str(base / "cache"),
        "GALAXY_LAB_RUNS_DIR": str(base / "runs"),
    }
    (base / "none.toml").write_text("")
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"), "--server.headless=true"]
    process, url = start_server(
        [*command, f"--server.port={port}", "--server.address=127.0.0.1"],
        port=port,
        cwd=base,
        env=env,
        log=base / "server.log",
    )
    yield url
    stop_server(process)
    stop_training_service(base / "runs")  # the service the app started outlives its server, as it should


def add_finished_run(template: Path, runs_dir: Path, suffix: str) -> str:
    """A copy of the session's trained run in the app's runs folder, under a new id."""
    run_id = f"{template.name}-{suffix}"
    shutil.copytree(template, runs_dir / run_id)
    return run_id


def add_run_stopped_before_its_first_epoch(template: Path, runs_dir: Path, suffix: str) -> str:
    """A run that kept nothing: stopped while loading its dataset."""
    from galaxy_core.training import Run

    run_id = add_finished_run(template, runs_dir, suffix)
    run = Run(runs_dir / run_id)
    for path in (run.best_model_path, run.final_model_path, run.predictions_path, run.evaluation_path):
        path.unlink(missing_ok=True)
    empty = dict.fromkeys(("test_accuracy", "test_balanced_accuracy", "test_balanced_accuracy_tta"))
    rewrite_status(run, "stopped", message="stopped while loading its dataset: no model", epochs_done=0, **empty)
    return run_id


def choose_the_classroom_folder(page) -> None:
    """On the Dataset page: the class's small folder (52 galaxies) becomes the session's dataset."""
    from playwright.sync_api import expect

    choose(page, "Dataset", "classroom (folder)", "classroom")
    expect(page.get_by_test_id("stSidebar").get_by_text("classroom, 64 px, RGB")).to_be_visible()


def choose(page, box: str, option: str | re.Pattern, typed: str) -> None:
    """In the selectbox labelled `box`, the option named `option`, found by typing `typed` as a person with a long
    list would: the dropdown draws only the rows in view (Streamlit virtualises it), so a row further down moves as
    it is scrolled to and a click on it can wait for ever. Opened once the script has drawn the page, so no rerun
    draws the list anew under the pointer."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    page.get_by_role("combobox", name=box, exact=True).click()
    page.keyboard.type(typed)
    choice = page.get_by_role("option", name=option, exact=isinstance(option, str))
    expect(choice).to_have_count(1)
    choice.click()


def choose_run(page, box: str, run_id: str) -> None:
    choose(page, box, re.compile(f"^{re.escape(run_id)}( |$)"), run_id)


def queue_a_custom_cnn_run(page, epochs: int, early_stopping: bool = True, double_click: bool = False) -> None:
    """On the Train page with the form open: your own recipe, the custom CNN for `epochs`, Train (pressed twice in a
    row with `double_click`, as a hurried person does)."""
    from playwright.sync_api import expect

    page.get_by_text("Your own: choose the model and settings").click()
    choose(page, "Model", "Custom: Custom CNN", "Custom CNN")
    # The form is drawn anew for the chosen model (its recipe's learning rate, 0.001): wait for it before typing.
    expect(page.get_by_test_id("stSliderThumbValue").get_by_text("0.001", exact=True)).to_be_visible()
    field = page.get_by_role("spinbutton", name="Epochs (at most)")
    field.fill(str(epochs))
    field.press("Tab")  # commit the typed value before submitting the form
    expect(field).to_have_value(str(epochs))
    # A click that lands while the script is still running can be lost: wait until the app is idle.
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    if not early_stopping:
        toggle = page.get_by_test_id("stForm").get_by_text("Early stopping", exact=True)
        expect(toggle).to_have_count(1)  # not while the form is being drawn anew
        toggle.click()
    train = page.get_by_role("button", name="Train", exact=True)
    train.dblclick() if double_click else train.click()
    # A double click's second press may draw the page last: it says the first press queued the run.
    expect(page.get_by_text(re.compile("Queued run|was queued by this press already")).first).to_be_visible()


def run_folders(runs: Path) -> set[str]:
    return {path.name for path in runs.glob("*") if path.is_dir() and not path.name.startswith(".")}


@pytest.fixture
def page(request):
    with browser_tabs(request) as (tab,):
        yield tab


def test_a_deep_link_goes_through_the_router(app_url, page):
    from playwright.sync_api import expect

    # First in this module, so that it is the server's first visit: Streamlit then runs pages/architecture.py
    # alone (its old pages/ folder rule), which must hand over to the router.
    page.goto(f"{app_url}/architecture")
    expect(page.get_by_role("heading", name="Architecture")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Active dataset")).to_be_visible()  # drawn by the router, app.py
    expect(sidebar.get_by_role("link", name="Train")).to_be_visible()
    expect(sidebar.get_by_text("widgets")).to_have_count(0)  # not Streamlit's old pages/ menu
    expect(page.get_by_text("Page not found")).to_have_count(0)


def test_home_then_browse_synthetic_and_real_folder(app_url, page):
    from playwright.sync_api import expect

    page.goto(app_url)
    expect(page.get_by_role("heading", name="Galaxy CNN Lab")).to_be_visible()
    expect(page.get_by_text("synthetic, normal, 64 px, RGB").first).to_be_visible()

    page.get_by_role("link", name="Browse the dataset").click()
    expect(page.get_by_role("heading", name="Dataset")).to_be_visible()
    expect(page.get_by_text("2,400")).to_be_visible()  # synthetic training images
    page.get_by_role("tab", name="Browse").click()
    expect(page.get_by_text("Look closer at")).to_be_visible()
    expect(page.locator("[data-testid='stImage'] img")).to_have_count(25)  # 24 in the grid + the closer look

    choose_the_classroom_folder(page)
    page.get_by_role("tab", name="Overview").click()
    expect(page.get_by_text("The classes are imbalanced")).to_be_visible()


def test_the_convolution_playground(app_url, page):
    from playwright.sync_api import expect

    page.goto(f"{app_url}/playground")
    expect(page.get_by_role("heading", name="Convolution")).to_be_visible()
    expect(page.get_by_text("floor((64 - 3) / 1) + 1 = 62 px")).to_be_visible()
    choose(page, "Kernel", "Sobel x", "Sobel x")
    page.get_by_text("max", exact=True).click()  # 2x2 max pooling
    expect(page.get_by_text("then 2x2 max pooling: 31 px")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(2)  # the feature map and the pooled one
    assert "playground_kernel=Sobel" in page.url and "playground_pooling=max" in page.url


def table_and_panel_agree(page, samples: int = 4) -> None:
    """The runs table's epochs cell and the progress bar, read at once from the page several times while the run
    trains, tell the same epoch and batch (one read of the run draws both)."""
    read_both = """() => {
        const cells = [...document.querySelectorAll('[data-testid="stDataFrame"] [role="gridcell"]')];
        const progress = document.querySelector('[data-testid="stProgress"]');
        return [cells.map(c => c.textContent), progress ? progress.textContent : '',
                document.querySelector('[data-testid="stApp"]').dataset.testScriptState];
    }"""
    agreed = 0
    for _ in range(samples * 8):
        reads = []
        for _ in range(2):  # a page that stood still between two reads: drawn, the table's grid included
            reads.append(page.evaluate(read_both))
            time.sleep(0.3)
        cells, progress, script_state = reads[0]
        settled = all(read == reads[0] for read in reads)
        in_table = next((c for c in cells if re.fullmatch(r"\d+/150(, batch \d+/\d+)?", c)), None)
        # "epoch 3 of at most 150, batch 4/7" while an epoch trains, "2 of at most 150 epochs trained" between them
        panel = r"epoch (\d+) of at most 150(, batch \d+/\d+)|(\d+) of at most 150 epochs trained"
        in_panel = re.search(panel, progress)
        if settled and script_state == "notRunning" and in_table and in_panel:  # not in the middle of a redraw
            done, _, batch = in_table.partition(",")
            done = int(done.split("/")[0])
            if in_panel.group(1):
                assert (int(in_panel.group(1)), in_panel.group(2)) == (done + 1, "," + batch), (in_table, progress)
            else:
                assert (int(in_panel.group(3)), batch) == (done, ""), (in_table, progress)
            agreed += 1
            if agreed == samples:
                return
    raise AssertionError(f"the table and the progress bar were read together only {agreed} times")


def test_train_a_run_watch_its_curve_and_stop_it(app_url, app_base, page):
    from playwright.sync_api import expect

    # A class trains on its small folder (52 galaxies), chosen on the Dataset page, in the same session.
    page.goto(f"{app_url}/dataset")
    choose_the_classroom_folder(page)
    page.get_by_test_id("stSidebar").get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="Train")).to_be_visible()
    expect(page.get_by_text("On the active dataset: classroom")).to_be_visible()
    # The recommended preset comes first, with how long it will take (or that this is being measured).
    expect(page.get_by_text("Recommended: Small Inception")).to_be_visible()
    duration = re.compile("Measuring how fast this machine trains|Expected duration on this machine")
    expect(page.get_by_text(duration)).to_be_visible()
    before = run_folders(app_base / "runs")
    queue_a_custom_cnn_run(page, epochs=150, early_stopping=False, double_click=True)  # trains until it is stopped
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    assert len(run_folders(app_base / "runs") - before) == 1  # a double click queues one run
    # Its stages show as they happen, up to training; the fragment refreshes the table and the run every 2 s.
    stages = re.compile("starting|loading its dataset|building its model|preparing the first batch|training")
    expect(page.get_by_test_id("stProgress").get_by_text(stages)).to_be_visible(timeout=120_000)
    expect(page.get_by_text(": running ·")).to_be_visible(timeout=120_000)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Training curve by batch")).to_be_visible(timeout=120_000)
    table_and_panel_agree(page)
    page.get_by_role("button", name="Stop").click()
    # Stopped, it keeps its best epoch and is evaluated like a finished run.
    expect(page.get_by_text(": stopped ·")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Test balanced accuracy", exact=True)).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Test balanced accuracy's 95% interval:")).to_be_visible()


def test_evaluate_confusion_matrix_cell_and_gradcam(app_url, app_base, _trained_run_template, page):
    from playwright.sync_api import expect

    run_id = add_finished_run(_trained_run_template, app_base / "runs", "eval")
    page.goto(f"{app_url}/evaluate")
    expect(page.get_by_role("heading", name="Evaluate")).to_be_visible()
    choose_run(page, "Run", run_id)
    expect(page.get_by_text("Macro F1")).to_be_visible()
    page.get_by_role("tab", name="Confusion matrix").click()
    plot_area = page.locator(".js-plotly-plot .nsewdrag").first
    expect(plot_area).to_be_visible()
    box = plot_area.bounding_box()
    # The bottom-right cell: true spiral, predicted spiral.
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    page.mouse.click(box["x"] + box["width"] * 5 / 6, box["y"] + box["height"] * 5 / 6)
    expect(page.get_by_text("were predicted spiral")).to_be_visible()
    expect(page.get_by_text("are spiral and were predicted spiral")).to_be_visible()
    page.get_by_role("tab", name="Grad-CAM").click()
    expect(page.get_by_text("What the network looks at, per class")).to_be_visible()
    expect(page.get_by_text("input · true").first).to_be_visible()


def test_a_reload_and_a_shared_link_keep_the_dataset_run_and_tab(app_url, app_base, _trained_run_template, page):
    from playwright.sync_api import expect

    run_id = add_finished_run(_trained_run_template, app_base / "runs", "link")
    early_id = add_run_stopped_before_its_first_epoch(_trained_run_template, app_base / "runs", "early")
    page.goto(f"{app_url}/dataset")
    choose_the_classroom_folder(page)
    page.get_by_test_id("stSidebar").get_by_role("link", name="Evaluate").click()
    choose_run(page, "Run", run_id)
    page.get_by_role("tab", name="Mistakes").click()
    expect(page.get_by_text("test images are misclassified")).to_be_visible()
    # The run stopped before its first epoch is not offered: it is listed apart with why, and nothing is red.
    page.get_by_text(re.compile(r"^\d+ other run\(s\) cannot be evaluated$")).click()
    expect(page.get_by_text(f"{early_id} (custom_cnn): stopped while loading its dataset: no model")).to_be_visible()
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    link = page.url
    assert f"evaluate_run={run_id}" in link and "evaluate_tabs=Mistakes" in link and "dataset=" in link

    def shows_the_same_view(tab) -> None:
        expect(tab.get_by_test_id("stSidebar").get_by_text("classroom, 64 px, RGB")).to_be_visible()
        expect(tab.get_by_text(f"This page shows run {run_id[-4:]}, trained on")).to_be_visible()
        expect(tab.get_by_text("test images are misclassified")).to_be_visible()
        expect(tab.get_by_role("combobox", name="Run", exact=True)).to_have_value(re.compile(f"^{run_id} · "))

    page.reload()
    shows_the_same_view(page)
    stranger = page.context.browser.new_page()  # someone else opening the shared link
    stranger.goto(link)
    shows_the_same_view(stranger)
    stranger.close()


def test_classify_a_good_and_a_bad_upload(app_url, app_base, _trained_run_template, page, tmp_path):
    from playwright.sync_api import expect

    from tests.uploads import encode, galaxy_photo

    add_finished_run(_trained_run_template, app_base / "runs", "classify")
    (tmp_path / "galaxy.jpg").write_bytes(encode(galaxy_photo(), "JPEG"))
    (tmp_path / "notes.jpg").write_text("a text file with a picture's name\n")
    page.goto(f"{app_url}/classify")
    expect(page.get_by_role("heading", name="Classify")).to_be_visible()
    page.locator("input[type=file]").set_input_files([tmp_path / "galaxy.jpg", tmp_path / "notes.jpg"])
    expect(page.get_by_text("notes.jpg was not classified")).to_be_visible()
    expect(page.get_by_text("what the model sees")).to_be_visible()
    expect(page.get_by_text("Grad-CAM for").first).to_be_visible()


def test_compare_two_runs(app_url, app_base, _trained_run_template, page):
    from playwright.sync_api import expect

    for suffix in ("compare-a", "compare-b"):
        add_finished_run(_trained_run_template, app_base / "runs", suffix)
    add_run_stopped_before_its_first_epoch(_trained_run_template, app_base / "runs", "compare-early")  # no results
    page.goto(f"{app_url}/compare")
    expect(page.get_by_role("heading", name="Compare")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()  # the first view: two runs' figures
    expect(page.get_by_text("Choose at least two runs")).to_have_count(0)
    page.get_by_role("tab", name="Curves").click()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    page.get_by_role("tab", name="Significance").click()
    expect(page.get_by_text("p-value (McNemar, exact)")).to_be_visible()


def test_two_runs_answer_as_one_ensemble_and_evaluate_shows_each_members_share(
    app_url, app_base, _trained_run_template, page
):
    from playwright.sync_api import expect

    for suffix in ("together-a", "together-b"):
        add_finished_run(_trained_run_template, app_base / "runs", suffix)
    page.goto(
        f"{app_url}/compare?compare_runs={_trained_run_template.name}-together-a"
        f"&compare_runs={_trained_run_template.name}-together-b"
    )
    expect(page.get_by_role("heading", name="Compare")).to_be_visible()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    page.get_by_role("button", name="Make an ensemble of these runs").click()
    expect(page.get_by_text("Queued the ensemble of 2 runs")).to_be_visible()
    # Once its turn has come and it has answered, Evaluate opens on the run looked at last: the ensemble.
    from galaxy_core.training import RunStore

    store = RunStore(app_base / "runs")
    wait_for(lambda: any(s.kind == "ensemble" and s.has_test_results for s in store.runs()), timeout=120)
    page.get_by_test_id("stSidebar").get_by_role("link", name="Evaluate").click()
    expect(page.get_by_text("Look at")).to_be_visible()
    page.get_by_role("tab", name="Members").click()
    expect(page.get_by_text("What it adds: the ensemble's figure minus")).to_be_visible()
    expect(page.get_by_text(re.compile("All members give the same answer on"))).to_be_visible()


def test_start_a_run_from_a_finished_one_and_follow_it_to_its_base(app_url, app_base, _trained_run_template, page):
    from playwright.sync_api import expect

    base_id = add_finished_run(_trained_run_template, app_base / "runs", "base")
    page.goto(f"{app_url}/dataset")
    choose_the_classroom_folder(page)
    page.get_by_test_id("stSidebar").get_by_role("link", name="Train").click()
    expect(page.get_by_role("heading", name="Train")).to_be_visible()
    new_run = page.get_by_text("New run", exact=True)
    if not page.get_by_text("Recipe", exact=True).is_visible():
        new_run.click()
    page.get_by_text("Start from a run: a new head on a trained network").click()
    choose_run(page, "Start from", base_id)
    expect(page.get_by_text("read at the base's input size (the Dataset page's 64 px does not apply)")).to_be_visible()
    page.get_by_text("What each layer does in the new run").click()
    expect(page.get_by_test_id("stDataFrame").last).to_be_visible()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    page.get_by_role("button", name="Train from this run").click()
    expect(page.get_by_text("Queued run")).to_be_visible()
    # A head on cached features: it ends in seconds, and says where it started.
    expect(page.get_by_text(": finished ·")).to_be_visible(timeout=120_000)
    link = page.get_by_role("link", name=re.compile("^Started from run"))
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_role("heading", name="Evaluate")).to_be_visible()
    expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(re.compile(f"^{base_id} · "))


def test_review_doubted_labels_and_the_decision_survives_a_reload(app_url, app_base, _review_run_template, page):
    from playwright.sync_api import expect

    add_finished_run(_review_run_template, app_base / "runs", "review")
    page.goto(f"{app_url}/review")
    expect(page.get_by_role("heading", name="Label review")).to_be_visible()
    expect(page.get_by_text("Doubted labels")).to_be_visible()
    expect(page.get_by_text("Grad-CAM ·").first).to_be_visible()  # the fold model's maps of the first galaxy
    accepted = page.get_by_test_id("stMetric").filter(has_text="Accepted")
    expect(accepted).to_contain_text("0")
    page.get_by_text("Accept the suggestion").first.click()
    expect(accepted).to_contain_text("1")
    page.reload()  # the decision is the review's, not the session's
    expect(page.get_by_test_id("stMetric").filter(has_text="Accepted")).to_contain_text("1")
    expect(page.get_by_role("button", name="Download the reviewed labels (CSV)")).to_be_visible()


def test_the_first_epoch_is_visible_while_it_trains(app_url, app_base, page):
    """A run in its first epoch (a stand-in process keeps it alive for the service) shows its batches in the table
    and the progress bar, and its training curve by batch, which grows as batches are recorded."""
    from playwright.sync_api import expect

    from tests.helpers import record_batches, run_in_its_first_epoch

    stand_in = subprocess.Popen(["sleep", "300"])
    run = run_in_its_first_epoch(app_base / "runs", stand_in.pid)
    try:
        page.goto(f"{app_url}/train?train_selected_run={run.id}")
        expect(page.get_by_text(f"{run.id}: running")).to_be_visible()
        expect(page.get_by_text("epoch 1 of at most 3, batch 12/40")).to_be_visible()
        expect(
            page.get_by_text("Until the first epoch ends, the training curve is drawn batch by batch")
        ).to_be_visible()
        line = page.locator(".js-plotly-plot .scatterlayer .trace .js-line").first
        expect(line).to_have_attribute("d", re.compile(r"M.+L.+L"))  # three batches drawn
        before = line.get_attribute("d")
        record_batches(run, (18, 24))
        run.report_progress(batches_done=24)
        expect(page.get_by_text("epoch 1 of at most 3, batch 24/40")).to_be_visible()  # refreshed by itself
        expect(line).not_to_have_attribute("d", before)
    finally:
        stand_in.kill()
        run.move_to("stopped", message="stopped by the test")
