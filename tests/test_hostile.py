"""The hostile corpus (tests/hostile.py) through the library, `galaxy-lab predict --json` and the Classify page: each
file gets its outcome, one file never sinks the others, no external program runs, names stay readable and distinct."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from galaxy_core.answers.uploads import ImageInput, UploadLimits, read_uploads, without_repeats
from galaxy_core.cli import main
from galaxy_core.data import PreprocessOptions
from tests.helpers import open_page
from tests.hostile import LIMITS, Case, corpus

OPTIONS = PreprocessOptions(image_size=32)
CASES = corpus()
SHARED = [case for case in CASES if not case.alone]
ALONE = [case for case in CASES if case.alone]
# What libraries say, which a user should never have to read.
RAW_WORDING = (
    "errno",
    "cannot identify image file",
    "image file is truncated",
    "broken data stream",
    "error -3",
    "zlib",
)


def outcome(upload) -> str | None:
    return None if isinstance(upload, ImageInput) else upload.reason


def check(case: Case, results: list) -> None:
    """`results`: (name, None or reason) per result of the case, in order."""
    assert len(results) == len(case.outcomes), (case.name, results)
    for (name, got), expected in zip(results, case.outcomes, strict=True):
        assert name.isprintable(), name
        if expected is None:
            assert got is None, (case.name, name, got)
        else:
            assert got is not None and expected in got, (case.name, name, got)
            assert not any(raw in got.lower() for raw in RAW_WORDING), got


def test_the_corpus_is_large_and_varied():
    assert len(CASES) >= 60
    outcomes = [o for case in CASES for o in case.outcomes]
    assert outcomes.count(None) >= 20 and len(outcomes) - outcomes.count(None) >= 40


@pytest.mark.parametrize("case", CASES, ids=[repr(case.name) for case in CASES])
def test_each_case_through_the_library(case, monkeypatch):
    def no_programs(*args, **kwargs):
        raise AssertionError(f"an upload started a program: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_programs)  # Pillow hands EPS to Ghostscript through Popen
    uploads = read_uploads([(case.name, case.data)], OPTIONS, LIMITS)
    check(case, [(upload.name, outcome(upload)) for upload in uploads])
    for upload in uploads:
        if isinstance(upload, ImageInput):
            assert upload.pixels.shape == (32, 32, 3)


def test_every_result_names_one_input():
    uploads = read_uploads([(case.name, case.data) for case in SHARED], OPTIONS, LIMITS)
    names = [upload.name for upload in uploads]
    assert len(names) == len(set(names))
    assert "duplicates.zip/same.jpg" in names and "duplicates.zip/same.jpg (2)" in names
    assert "line?break?[31m.jpg" in names
    assert "jpeg-with-zip-appended.jpg" in names and "zip-named-as.jpg/inside.png" in names


def test_a_request_shares_one_budget():
    flat = next(case for case in ALONE if case.name == "megapixel-bomb.zip")
    small = UploadLimits(LIMITS.file_bytes, LIMITS.unpacked_bytes, pixels=45_000_000)
    # The first 39.7 MP image fits the budget; nothing after it does, in the same archive or in the next file.
    uploads = read_uploads([(flat.name, flat.data), ("next.zip", flat.data)], OPTIONS, small)
    assert [outcome(u) is None for u in uploads] == [True] + [False] * 5


@pytest.fixture
def corpus_limits(monkeypatch):
    """The server's settings are the corpus' limits."""
    monkeypatch.setenv("GALAXY_LAB_UPLOAD_LIMIT_MB", str(LIMITS.file_bytes // 1_000_000))
    monkeypatch.setenv("GALAXY_LAB_UPLOAD_UNPACKED_MB", str(LIMITS.unpacked_bytes // 1_000_000))
    monkeypatch.setenv("GALAXY_LAB_UPLOAD_MEGAPIXELS", str(LIMITS.pixels // 1_000_000))


def test_the_shared_cases_through_predict_json(finished_run, tmp_path, capsys, corpus_limits):
    paths = []
    for number, case in enumerate(SHARED):
        folder = tmp_path / f"{number:02d}"
        folder.mkdir()
        (folder / case.name).write_bytes(case.data)
        paths.append(folder / case.name)
    fifo, device, folder = tmp_path / "pipe.jpg", tmp_path / "zero.jpg", tmp_path / "folder.jpg"
    os.mkfifo(fifo)  # reading it would wait forever
    device.symlink_to("/dev/zero")  # reading it would never end
    folder.mkdir()
    assert main(["predict", finished_run.id, *map(str, paths), str(fifo), str(device), str(folder), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    for case, path in zip(SHARED, paths, strict=False):
        mine = [r for r in results if r["file"].startswith(str(path).replace("\n", "?").replace("\x1b", "?"))]
        check(case, [(r["file"], r.get("error")) for r in mine])
        assert all(r["label"] in ("edge", "smooth", "spiral") for r in mine if "error" not in r)
    assert [r["error"] for r in results[-3:]] == ["not a regular file (a folder, a device or a pipe)"] * 3


@pytest.mark.parametrize("case", ALONE, ids=[case.name for case in ALONE])
def test_the_requests_of_their_own_through_predict_json(case, finished_run, tmp_path, capsys, corpus_limits):
    (tmp_path / case.name).write_bytes(case.data)
    main(["predict", finished_run.id, str(tmp_path / case.name), "--json"])
    check(case, [(r["file"], r.get("error")) for r in json.loads(capsys.readouterr().out)])


def upload_through_the_page(files: list[tuple[str, bytes]]):
    at = open_page("classify")
    at.file_uploader(key="classify_uploads_0").set_value(
        [(name, data, "application/octet-stream") for name, data in files]
    )
    return at.run()


def test_the_shared_cases_on_the_classify_page(finished_run, corpus_limits):
    at = upload_through_the_page([(case.name, case.data) for case in SHARED])
    assert not at.exception
    distinct, _ = without_repeats((case.name, case.data) for case in SHARED)  # the page shows a repeat once
    kept = {name for name, _ in distinct}
    expected = [o for case in SHARED if case.name in kept for o in case.outcomes]
    # Shown as text: Markdown's escapes taken off, the reason reads as the library gave it.
    warnings = [w.value.replace("\\", "") for w in at.warning if "was not classified" in w.value]
    assert len(warnings) == len([o for o in expected if o is not None])
    for reason in {o for o in expected if o is not None}:
        assert any(reason in warning for warning in warnings), reason
    assert len(at.dataframe[0].value) == expected.count(None)


@pytest.mark.parametrize("case", ALONE, ids=[case.name for case in ALONE])
def test_the_requests_of_their_own_on_the_classify_page(case, finished_run, corpus_limits):
    at = upload_through_the_page([(case.name, case.data)])
    assert not at.exception
    refused = [o for o in case.outcomes if o is not None]
    # Shown as text: Markdown's escapes taken off, the reason reads as the library gave it.
    warnings = [w.value.replace("\\", "") for w in at.warning if "was not classified" in w.value]
    assert len(warnings) == len(refused) and all(
        r in w for r, w in zip(refused, warnings[-len(refused) :], strict=True)
    )
