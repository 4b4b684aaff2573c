"""Text is text: whatever a person brings (a dataset's folder and class folders, image file names, a run's title, a
name from the school's provider, a dropped file's name, an archive's member) is shown as typed on every page, never
as Markdown, a Streamlit directive, maths or HTML; and no message shows the server's folders."""

import io
import zipfile

import numpy as np
import plotly.io
import pytest
from PIL import Image

from galaxy_core.classroom.people import STUDENT
from galaxy_core.training import RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from tests.helpers import account_user, give_run, markdown_texts, open_page, school_account, tiny_config

# Each hostile piece carries a word of its own, so that its raw form can be looked for in what pages render.
# (No "/" in any: they name files and folders too.)
BOLD, LINK, RED, TAG, MATHS = "**HB**", "[HL](https:__evil.example)", ":red[HR]", "<b>HT", "$HM^2$"
HOSTILE = (BOLD, LINK, RED, TAG, MATHS)
FOLDER = f"set {LINK} {BOLD}"
CLASSES = (f"{BOLD} edge", f"{RED} smooth", f"{TAG} {MATHS} spiral")
EVE = school_account("eve@school.org", f"Eve {LINK} {RED}")
EVE_USER = account_user(EVE, STUDENT)


def raw_pieces(texts: list[str]) -> list[tuple[str, str]]:
    """(piece, text) for every hostile piece found as typed in a text a page renders as Markdown or HTML."""
    return [(piece, text) for text in texts for piece in HOSTILE if piece in text]


def galaxy_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def _hostile_template(tmp_path_factory) -> dict:
    """A data root with a folder dataset of hostile folder, class and file names, and two runs of Eve's (a hostile
    name) on it with hostile titles, trained once for the module (the pages only read them)."""
    base = tmp_path_factory.mktemp("hostile")
    root = base / "data" / FOLDER
    for number, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for image in range(12):
            (root / name / f"{LINK} {TAG} {image}.png").write_bytes(galaxy_png(100 * number + image))
    dataset = {"name": "folder", "path": str(root), "image_size": 16}
    runs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GALAXY_LAB_CACHE_DIR", str(base / "cache"))
        patch.setenv("GALAXY_LAB_DATA_ROOTS", str(base / "data"))
        for seed in (0, 1):
            run = new_run(RunStore(base / "runs"), tiny_config(dataset=dataset, epochs=1, seed=seed), EVE_USER)
            assert train_in_this_process(run) == "finished"
            run.set_title(f"{BOLD} {RED} {TAG}", by="test")
            give_run(run, EVE_USER)
            runs.append(run)
    return {"data": base / "data", "runs": base / "runs", "dataset": dataset, "run_ids": [run.id for run in runs]}


@pytest.fixture
def hostile_lab(_hostile_template, isolated_settings, monkeypatch):
    """This test's lab reads the hostile data root and runs; Eve signs in with the school's provider."""
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    monkeypatch.setenv("GALAXY_LAB_DATA_ROOTS", str(_hostile_template["data"]))
    monkeypatch.setenv("GALAXY_LAB_RUNS_DIR", str(_hostile_template["runs"]))
    return _hostile_template


PAGES = [
    ("home", {}),
    ("dataset", {}),
    ("train", {"train_new_run": True}),
    ("evaluate", {"evaluate_tabs": "Confusion matrix"}),
    ("evaluate", {"evaluate_tabs": "Mistakes"}),
    ("evaluate", {"evaluate_tabs": "Grad-CAM"}),
    ("evaluate", {"evaluate_tabs": "Feature map"}),
    ("classify", {"classify_source": "From the dataset"}),
    ("compare", {"compare_tabs": "Curves"}),
    ("compare", {"compare_tabs": "Confusion matrices"}),
    ("compare", {"compare_tabs": "Shared mistakes"}),
    ("board", {}),
]


PAGE_IDS = [f"{page}-{'-'.join(map(str, state.values()))}" for page, state in PAGES]


@pytest.mark.parametrize(("page", "state"), PAGES, ids=PAGE_IDS)
def test_every_page_shows_what_people_bring_as_typed(hostile_lab, page, state):
    from galaxy_core.data import DatasetSpec

    run_id = hostile_lab["run_ids"][0]
    if page == "compare":
        state = {**state, "compare_runs": hostile_lab["run_ids"]}
    spec = DatasetSpec.from_dict(hostile_lab["dataset"])
    at = open_page(page, signed_in_as=EVE, active_dataset_spec=spec, viewed_run=run_id, **state)
    assert not at.exception, at.exception
    texts = markdown_texts(at)
    figures = [plotly.io.from_json(figure.proto.spec).to_json() for figure in at.get("plotly_chart")]
    shown = texts + figures
    assert any(word in text for text in shown for word in ("HB", "HL", "HR", "HT", "HM")), "no name shown here"
    assert raw_pieces(texts) == []
    assert all(TAG not in figure for figure in figures)  # Plotly reads <b> and <a href> in its texts
    assert all(str(hostile_lab["data"]) not in text for text in texts)  # no server folder in any message


def test_a_dropped_file_and_an_archives_members_are_named_as_typed(hostile_lab):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"{BOLD} {LINK}.png", galaxy_png(1))
        bundle.writestr(f"{RED} not an image.png", b"not a png")
    files = [
        (f"{LINK} {BOLD} {RED}.png", galaxy_png(2), "image/png"),
        (f"{TAG}.zip", archive.getvalue(), "application/zip"),
        (f"{MATHS} {LINK}.png", b"not a png either", "image/png"),
    ]
    at = open_page("classify", signed_in_as=EVE)
    at.file_uploader(key="classify_uploads_0").set_value(files).run()
    assert not at.exception
    texts = markdown_texts(at)
    assert any("HB" in text and "HL" in text for text in texts)  # the dropped file is named...
    assert any("HR" in text for text in texts)  # ...so is the member that is not an image, with why
    assert raw_pieces(texts) == []  # ...as typed
    at = open_page("playground", signed_in_as=EVE)
    at.file_uploader(key="playground_upload").set_value([files[2]]).run()
    assert not at.exception and any("HM" in text for text in markdown_texts(at))
    assert raw_pieces(markdown_texts(at)) == []
