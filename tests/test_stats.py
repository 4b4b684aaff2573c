"""Dataset statistics: the imbalance rule, mean images per class, pixel histograms."""

import numpy as np

from galaxy_core.data.dataset import Dataset, Split
from galaxy_core.data.images import PreprocessOptions
from galaxy_core.data.stats import class_mean_images, imbalance, pixel_histograms


def dataset_with(train_labels: list[int], num_classes: int = 3) -> Dataset:
    images = np.zeros((len(train_labels), 2, 2, 3), np.uint8)
    for index, label in enumerate(train_labels):
        images[index] = 20 * (label + 1) + index
    labels = np.array(train_labels, np.int32)
    train = Split(images, labels, np.array([str(i) for i in range(len(labels))]), np.full((len(labels), 2), 2))
    empty = train.take(np.array([], dtype=int))
    names = tuple(f"class{c}" for c in range(num_classes))
    return Dataset("toy", names, {"train": train, "val": empty, "test": empty}, PreprocessOptions(image_size=8))


def test_a_class_above_one_and_a_half_fair_shares_is_dominant():
    assert imbalance(dataset_with([0, 1, 2, 0, 1, 2])) is None
    assert imbalance(dataset_with([0, 0, 0, 1, 1, 2])) is None  # 50%: exactly 1.5 fair shares of 1/3
    assert imbalance(dataset_with([0, 0, 0, 1, 2])).majority == "class0"  # 60%
    dominant = imbalance(dataset_with([1] * 8 + [0, 2]))
    assert dominant.majority == "class1" and dominant.share == 0.8
    assert dominant.balanced_accuracy == 1 / 3


def test_class_means_are_stretched_and_skip_absent_classes():
    means = class_mean_images(dataset_with([0, 0, 2]).splits["train"], ("a", "b", "c"))
    assert [(name, count) for name, count, _ in means] == [("a", 2), ("c", 1)]
    assert all(mean.dtype == np.uint8 and mean.max() == 255 for _, _, mean in means)


def test_pixel_histograms_count_every_pixel_per_channel():
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 3, 3), dtype=np.uint8)
    histograms = pixel_histograms(images)
    assert list(histograms) == ["red", "green", "blue"]
    assert all(counts.shape == (256,) and counts.sum() == 36 for counts in histograms.values())
    assert histograms["green"][images[0, 0, 0, 1]] >= 1
    assert list(pixel_histograms(images[..., :1])) == ["gray"]
