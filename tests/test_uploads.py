"""Classifying uploads: every bad file has its own reason and the rest are still classified; zips; predict and
export from the terminal; every export format reloads and predicts like the original."""

import json
import zipfile

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from galaxy_core.answers.export import export_run
from galaxy_core.answers.inference import load_run_model
from galaxy_core.answers.uploads import ImageInput, RejectedFile, UploadLimits, read_uploads, without_repeats
from galaxy_core.cli import main
from galaxy_core.data import PreprocessOptions
from galaxy_core.data.images import open_image, preprocess_pil
from tests.uploads import encode, exif_rotated_jpeg, galaxy_photo, mixed_uploads, zip_of

OPTIONS = PreprocessOptions(image_size=32)
LIMITS = UploadLimits(file_bytes=5_000_000, unpacked_bytes=50_000_000, pixels=200_000_000)


def read_images(files, options=OPTIONS, limits=LIMITS):
    """(usable images, rejected files), each in input order."""
    uploads = read_uploads(files, options, limits)
    return [u for u in uploads if isinstance(u, ImageInput)], [u for u in uploads if isinstance(u, RejectedFile)]


def test_each_bad_file_gets_its_reason_and_the_good_ones_are_read():
    uploads = mixed_uploads()
    images, rejected = read_images([(name, data) for name, data, _ in uploads])
    assert [image.name for image in images] == [name for name, _, reason in uploads if reason is None]
    assert {r.name: r.reason for r in rejected}.keys() == {name for name, _, reason in uploads if reason}
    for name, _, reason in uploads:
        if reason:
            assert reason in next(r.reason for r in rejected if r.name == name)
    for image in images:
        assert image.pixels.shape == (32, 32, 3) and image.pixels.dtype == np.uint8
    warnings = {image.name: image.warnings for image in images}
    assert "enlarged to 32 px" in warnings["tiny.png"][0]
    assert warnings["galaxy.jpg"] == ()


def test_exif_rotation_is_honoured_in_what_the_model_sees():
    (rotated,), _ = read_images([("rotated.jpg", exif_rotated_jpeg())])
    upright = preprocess_pil(galaxy_photo().rotate(-90, expand=True), OPTIONS)
    assert np.abs(rotated.pixels.astype(int) - upright.astype(int)).mean() < 4
    assert rotated.original_size == open_image(exif_rotated_jpeg())[1]


def test_files_over_the_limit_are_refused_unread():
    big = encode(galaxy_photo(), "PNG")
    _, rejected = read_images([("big.png", big)], limits=UploadLimits(len(big) - 1, 10**8, 10**8))
    assert "above the" in rejected[0].reason and "MB limit" in rejected[0].reason


def test_zip_archives_are_opened_member_by_member():
    archive = zip_of(
        {
            "set/a.jpg": encode(galaxy_photo(), "JPEG"),
            "set/b.png": encode(galaxy_photo(40), "PNG"),
            "set/readme.txt": b"hello",
            "set/broken.png": b"\x89PNG not really",
            "__MACOSX/set/._a.jpg": b"junk",
            "inner.zip": zip_of({"c.jpg": encode(galaxy_photo(), "JPEG")}),
        }
    )
    images, rejected = read_images([("photos.zip", archive)])
    assert [image.name for image in images] == ["photos.zip/set/a.jpg", "photos.zip/set/b.png"]
    reasons = {r.name: r.reason for r in rejected}
    assert "not an image file type" in reasons["photos.zip/set/readme.txt"]
    assert "not an image file type" in reasons["photos.zip/inner.zip"]  # archives are opened one level deep
    assert "not an image" in reasons["photos.zip/set/broken.png"]
    _, rejected = read_images([("empty.zip", zip_of({}))])
    assert rejected[0].reason == "the archive holds no image files"
    _, rejected = read_images([("bad.zip", b"PK\x03\x04 nothing more")])
    assert rejected[0].reason == "a damaged zip archive"


def test_a_zip_bomb_member_is_refused_by_its_declared_size():
    archive = zip_of({"huge.png": b"\0" * 2_000_000})
    assert len(archive) < 10_000  # small archive, big content
    _, rejected = read_images([("bomb.zip", archive)], limits=UploadLimits(len(archive) + 10, 10**8, 10**8))
    assert "unpacks to 2.0 MB, above the limit" in rejected[0].reason


def test_predict_command_classifies_good_files_and_reports_bad_ones(finished_run, tmp_path, capsys):
    paths = []
    for name, data, _ in mixed_uploads()[:3] + mixed_uploads()[8:10]:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    paths.append(str(tmp_path / "missing.png"))
    assert main(["predict", finished_run.id, *paths, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in results] == paths
    for result in results[:3]:
        assert result["label"] in ("edge", "smooth", "spiral")
        assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert "empty" in results[3]["error"] and "not an image" in results[4]["error"]
    assert "No such file" in results[5]["error"]
    assert main(["predict", finished_run.id, paths[0], "--tta"]) == 0
    assert "galaxy.jpg: " in capsys.readouterr().out
    assert main(["predict", finished_run.id, paths[3]]) == 1
    assert "empty.jpg: not classified" in capsys.readouterr().err


def test_every_export_format_reloads_and_predicts_like_the_original(finished_run, tmp_path):
    import keras
    import tensorflow as tf

    assert main(["export", finished_run.id, "--output", str(tmp_path)]) == 0
    images = np.stack([preprocess_pil(galaxy_photo(60 + 8 * i).rotate(30 * i), OPTIONS) for i in range(6)]).astype(
        np.float32
    )
    expected = load_run_model(finished_run).predict(images, verbose=0)

    card = json.loads((tmp_path / f"{finished_run.id}.json").read_text())
    assert card["class_names"] == ["edge", "smooth", "spiral"] and card["input"]["shape"] == [32, 32, 3]
    assert card["preprocessing"]["crop_fraction"] == 1.0

    reloaded = keras.saving.load_model(tmp_path / f"{finished_run.id}.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, atol=1e-5)

    with zipfile.ZipFile(tmp_path / f"{finished_run.id}-savedmodel.zip") as archive:
        archive.extractall(tmp_path / "savedmodel")
    saved_model = tf.saved_model.load(str(tmp_path / "savedmodel"))  # kept: its functions need its variables
    served = saved_model.serve(tf.constant(images))
    np.testing.assert_allclose(np.asarray(served), expected, atol=1e-5)

    interpreter = Interpreter(model_path=str(tmp_path / f"{finished_run.id}.tflite"))  # LiteRT, as on a phone
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert (lite.argmax(axis=1) == expected.argmax(axis=1)).all()
    np.testing.assert_allclose(lite, expected, atol=1e-4)


def test_export_rejects_an_unknown_format(finished_run, tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export_run(finished_run, "onnx", tmp_path)


def test_a_file_dropped_again_is_left_out_once_counted():
    first, other = encode(galaxy_photo(), "PNG"), encode(galaxy_photo(40), "PNG")
    kept, repeats = without_repeats([("a.png", first), ("b.png", other), ("a copy.png", first), ("a.png", first)])
    assert kept == [("a.png", first), ("b.png", other)] and repeats == 2


@pytest.mark.parametrize("crop_fraction", [1.0, 0.4])
def test_a_dropped_copy_of_a_datasets_file_is_what_the_dataset_gave_the_model(isolated_settings, crop_fraction):
    """One way from a file to the model's input: every file of a folder dataset (JPEGs of several sizes, so that
    every DCT scale is used, a PNG, and a CMYK JPEG that only Pillow reads), dropped as an upload, gives the very
    pixels the dataset loader gave."""
    from galaxy_core.data import create_dataset

    root = isolated_settings["data"] / "shapes"
    photos = {"a": [(96, "JPEG"), (423, "JPEG"), (1200, "JPEG"), (90, "PNG")], "b": [(300, "JPEG"), (64, "JPEG")]}
    for label, files in photos.items():
        (root / label).mkdir(parents=True)
        for number, (size, fmt) in enumerate(files):
            suffix = ".png" if fmt == "PNG" else ".jpg"
            (root / label / f"{number}{suffix}").write_bytes(encode(galaxy_photo(size), fmt))
    (root / "b" / "cmyk.jpg").write_bytes(encode(galaxy_photo(120).convert("CMYK"), "JPEG"))
    dataset = create_dataset(
        "folder", path=str(root), image_size=32, crop_fraction=crop_fraction, cache_dir=isolated_settings["cache"]
    )
    compared = 0
    for split in dataset.splits.values():
        for source_id, pixels in zip(split.source_ids, split.images, strict=True):
            (upload,) = read_uploads([(source_id, (root / source_id).read_bytes())], dataset.spec.preprocess, LIMITS)
            np.testing.assert_array_equal(upload.pixels, pixels, err_msg=source_id)
            compared += 1
    assert compared == 7
