"""The real Galaxy Zoo data beside the repository (skipped, with the reason, where it is absent)."""

import numpy as np
import pytest

from galaxy_core.data import create_dataset

pytestmark = pytest.mark.real_data


def test_gz1_loads_with_the_documented_counts(gz1_path, tmp_path):
    dataset = create_dataset("folder", path=str(gz1_path), image_size=32, crop_fraction=0.4, cache_dir=tmp_path)
    assert dataset.class_names == ("edge", "smooth", "spiral")
    counts = dataset.class_counts()
    # ../shared/data/README.md: edge, smooth, spiral per split.
    assert counts["train"].tolist() == [648, 3020, 552]
    assert counts["val"].tolist() == [100, 464, 85]
    assert counts["test"].tolist() == [100, 464, 85]
    assert dataset.skipped == ()
    train = dataset.splits["train"]
    assert train.images.shape == (4220, 32, 32, 3)
    assert (train.original_sizes == 423).all()
    # The crop keeps the galaxy: the centre is brighter than the border on average.
    centre = train.images[:, 12:20, 12:20].mean()
    border = np.concatenate([train.images[:, :3].ravel(), train.images[:, -3:].ravel()]).mean()
    assert centre > 2 * border


def test_every_test_galaxy_dropped_as_a_file_gives_the_models_dataset_pixels(gz1_path, tmp_path):
    """Classify and `galaxy-lab predict` see what Evaluate sees: each of the 649 test galaxies, read as an upload,
    gives the very pixels the dataset loader gave (so the same answer from any model)."""
    from galaxy_core.answers.uploads import UploadLimits, read_upload_paths

    dataset = create_dataset("folder", path=str(gz1_path), image_size=48, crop_fraction=0.4, cache_dir=tmp_path)
    test = dataset.splits["test"]
    paths = [gz1_path / source_id for source_id in test.source_ids]
    limits = UploadLimits(file_bytes=10**7, unpacked_bytes=10**8, pixels=10**9)
    uploads = read_upload_paths(paths, dataset.spec.preprocess, limits)
    assert len(uploads) == len(test) == 649
    differing = [
        str(path)
        for path, upload, pixels in zip(paths, uploads, test.images, strict=True)
        if not np.array_equal(upload.pixels, pixels)
    ]
    assert not differing, f"{len(differing)} of 649 differ, e.g. {differing[:3]}"
