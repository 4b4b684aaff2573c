import numpy as np
import pytest
from PIL import Image

from galaxy_core.data import DatasetError, create_dataset
from galaxy_core.data import folder as folder_module
from tests.helpers import write_image_folder


def load(path, **options):
    return create_dataset("folder", path=str(path), image_size=16, **options)


def test_flat_folder_is_split_stratified_and_reproducibly(tmp_path):
    write_image_folder(tmp_path, {"edge": 10, "smooth": 30, "spiral": 20})
    dataset = load(tmp_path, seed=3)
    assert dataset.class_names == ("edge", "smooth", "spiral")
    counts = dataset.class_counts()
    assert counts["val"].tolist() == [1, 3, 2] and counts["test"].tolist() == [1, 3, 2]
    assert counts["train"].tolist() == [8, 24, 16]
    again = load(tmp_path, seed=3)
    assert (again.splits["test"].source_ids == dataset.splits["test"].source_ids).all()
    other = load(tmp_path, seed=4)
    assert set(other.splits["test"].source_ids) != set(dataset.splits["test"].source_ids)
    every_id = np.concatenate([s.source_ids for s in dataset.splits.values()])
    assert len(set(every_id)) == 60  # no image in two splits


def test_split_folders_are_used_as_they_are(tmp_path):
    write_image_folder(tmp_path, {"a": 6, "b": 4}, splits=("train", "val", "test"))
    dataset = load(tmp_path)
    assert [len(dataset.splits[s]) for s in ("train", "val", "test")] == [10, 10, 10]
    assert all(i.startswith("val/") for i in dataset.splits["val"].source_ids)
    images, labels = dataset.splits["train"].images, dataset.splits["train"].labels
    assert images.dtype == np.uint8 and images.shape == (10, 16, 16, 3)
    assert labels.tolist() == [0] * 6 + [1] * 4


def test_missing_val_folder_is_carved_from_train(tmp_path):
    write_image_folder(tmp_path, {"a": 20, "b": 20}, splits=("train", "test"))
    dataset = load(tmp_path, val_fraction=0.25)
    assert len(dataset.splits["val"]) == 10 and len(dataset.splits["train"]) == 30
    assert len(dataset.splits["test"]) == 40
    assert all(i.startswith("train/") for i in dataset.splits["val"].source_ids)


def test_extensions_in_any_case_are_read(tmp_path):
    rng = np.random.default_rng(0)
    for name, suffix, fmt in [
        ("a", ".JPG", "JPEG"),
        ("a", ".Png", "PNG"),
        ("a", ".tif", "TIFF"),
        ("b", ".BMP", "BMP"),
        ("b", ".jpeg", "JPEG"),
        ("b", ".TIFF", "TIFF"),
    ]:
        (tmp_path / name).mkdir(exist_ok=True)
        for index in range(3):
            pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{index}{suffix}", format=fmt)
    dataset = load(tmp_path)
    assert sum(len(s) for s in dataset.splits.values()) == 18
    assert dataset.skipped == ()


def test_bad_files_are_skipped_and_reported_by_name(tmp_path):
    write_image_folder(tmp_path, {"a": 5, "b": 5})
    (tmp_path / "a" / "zero.png").write_bytes(b"")
    (tmp_path / "a" / "renamed.jpg").write_text("just some text")
    good = (tmp_path / "b" / "b_000.png").read_bytes()
    (tmp_path / "b" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\0\1")
    dataset = load(tmp_path)
    reasons = {s.name: s.reason for s in dataset.skipped}
    assert set(reasons) == {"a/zero.png", "a/renamed.jpg", "b/truncated.png", "b/notes.txt"}
    assert "empty" in reasons["a/zero.png"]
    assert "not an image" in reasons["a/renamed.jpg"]
    assert "damaged" in reasons["b/truncated.png"]
    assert "not a supported image type" in reasons["b/notes.txt"]
    assert sum(len(s) for s in dataset.splits.values()) == 10


@pytest.mark.parametrize(
    ("arrange", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.write_text("x"), "is a file"),
        (lambda root: write_image_folder(root, {"only": 3}), r"at least 2\); found \['only'\]"),
        (lambda root: [(root / n).mkdir(parents=True) for n in ("a", "b")], "no images"),
        (lambda root: (write_image_folder(root, {"a": 3}), (root / "b").mkdir()), r"\['b'\] in .* no readable"),
        (lambda root: write_image_folder(root, {"a": 3, "b": 3}, splits=("val", "test")), "no train/ folder"),
        (
            lambda root: (
                write_image_folder(root, {"a": 3, "b": 3}, splits=("train",)),
                write_image_folder(root, {"c": 2}, splits=("val",)),
            ),
            "a class that",
        ),
    ],
    ids=["missing", "file", "one-class", "no-images", "empty-class", "no-train", "unknown-val-class"],
)
def test_unusable_folders_are_clear_errors(tmp_path, arrange, message):
    root = tmp_path / "dataset"
    arrange(root)
    with pytest.raises(DatasetError, match=message):
        load(root)


def test_all_files_unreadable_is_an_error(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="none of the 2 image files"):
        load(tmp_path)


def test_second_load_comes_from_the_cache_and_a_changed_folder_is_reloaded(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "data", {"a": 4, "b": 4})
    cache = tmp_path / "cache"
    first = load(root, cache_dir=cache)
    assert len(list((cache / "datasets").glob("folder-*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached dataset must not be decoded again")

    monkeypatch.setattr(folder_module, "load_image_file", no_decoding)
    second = load(root, cache_dir=cache)
    for split in first.splits:
        assert np.array_equal(first.splits[split].images, second.splits[split].images)
        assert (first.splits[split].source_ids == second.splits[split].source_ids).all()
    monkeypatch.undo()
    write_image_folder(root, {"a": 5, "b": 4}, seed=1)  # one more file, others rewritten
    third = load(root, cache_dir=cache)
    assert sum(len(s) for s in third.splits.values()) == 9


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    root = write_image_folder(tmp_path / "data", {"a": 4, "b": 4})
    cache = tmp_path / "cache"
    load(root, cache_dir=cache)
    entry = next((cache / "datasets").glob("*.npz"))
    entry.write_bytes(b"garbage")
    dataset = load(root, cache_dir=cache)
    assert sum(len(s) for s in dataset.splits.values()) == 8
    assert entry.stat().st_size > 100


def test_jpeg_fast_path_agrees_with_pil_and_falls_back_for_what_it_cannot_read(tmp_path):
    from galaxy_core.data.images import PreprocessOptions, load_image_file

    rng = np.random.default_rng(0)
    # Smooth like a galaxy image: sharp edges would magnify the sub-pixel difference of the two crop windows.
    coarse = Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((300, 300), Image.Resampling.BICUBIC))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(smooth).save(tmp_path / name / "rgb.jpg", quality=95)
        Image.fromarray(smooth[..., 0]).save(tmp_path / name / "gray.jpeg")
        Image.fromarray(smooth).convert("CMYK").save(tmp_path / name / "cmyk.jpg")
        # Too big for the 1/8 DCT scale alone: takes the antialiased resize.
        Image.fromarray(smooth).resize((2400, 2400)).save(tmp_path / name / "huge.jpg")
    dataset = create_dataset(
        "folder", path=str(tmp_path), image_size=16, crop_fraction=0.5, val_fraction=0.0, test_fraction=0.0
    )
    assert dataset.skipped == ()
    train = dataset.splits["train"]
    for index, source_id in enumerate(train.source_ids):
        reference, size = load_image_file(tmp_path / source_id, PreprocessOptions(16, 0.5))
        assert tuple(train.original_sizes[index]) == size
        difference = np.abs(train.images[index].astype(int) - reference.astype(int)).mean()
        assert difference < 6, (source_id, difference)  # two different images differ by ~80
