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
