import json

import pytest

from galaxy_core.cli import main
from tests.conftest import write_image_folder


def test_data_info_prints_counts_as_json(capsys):
    assert main(["data-info", "synthetic", "--num-images", "30", "--image-size", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["class_names"] == ["edge", "smooth", "spiral"]
    assert summary["image_shape"] == [16, 16, 3]
    assert sum(split["total"] for split in summary["splits"].values()) == 30


def test_data_info_names_skipped_files(isolated_settings, capsys):
    root = write_image_folder(isolated_settings["data"] / "mine", {"a": 4, "b": 4})
    (root / "a" / "broken.jpg").write_bytes(b"")
    assert main(["data-info", "mine", "--image-size", "16", "--grayscale"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 file(s):" in out and "a/broken.jpg: the file is empty" in out
    assert "[16, 16, 1]" in out


def test_datasets_lists_what_is_found(isolated_settings, capsys):
    write_image_folder(isolated_settings["data"] / "mine", {"a": 2, "b": 2})
    assert main(["datasets", "--json"]) == 0
    labels = [c["label"] for c in json.loads(capsys.readouterr().out)]
    assert labels == ["synthetic (built in, offline)", "mine (folder)"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data-info", "no-such-dataset"], "is neither 'synthetic'"),
        (["data-info", "synthetic", "--image-size", "3"], "image_size must be"),
        (["download", "sdss", "--url", "http://127.0.0.1:9/x.h5"], "seems to be offline"),
    ],
)
def test_errors_are_one_clear_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_help_documents_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("serve", "datasets", "data-info", "download"):
        assert command in out
