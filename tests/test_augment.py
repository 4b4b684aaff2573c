import numpy as np
import pytest

from galaxy_core.data import AugmentOptions, augment_images
from galaxy_core.data.pipeline import make_tf_dataset


def test_augmentation_keeps_shape_and_dtype_and_varies_per_image():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    augmented = augment_images(np.repeat(image, 6, axis=0), AugmentOptions(), seed=1)
    assert augmented.shape == (6, 32, 32, 3) and augmented.dtype == np.uint8
    assert len({a.tobytes() for a in augmented}) == 6


def test_flips_only_give_one_of_the_four_flips():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    flips = [image, image[::-1], image[:, ::-1], image[::-1, ::-1]]
    options = AugmentOptions(flip=True, rotate=False, zoom=0.0, brightness=0.0)
    for augmented in augment_images(np.repeat(image[None], 8, axis=0), options, seed=3):
        assert any(np.array_equal(augmented, flip) for flip in flips)


def test_nothing_enabled_means_no_augmentation():
    assert not AugmentOptions(flip=False, rotate=False, zoom=0.0, brightness=0.0).enabled
    with pytest.raises(ValueError, match=r"zoom must be between 0 and 0\.5"):
        AugmentOptions(zoom=0.9)


def test_pipeline_batches_float_images_and_int_labels():
    images = np.zeros((10, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(10) % 2
    batches = list(make_tf_dataset(images, labels, batch_size=4, augment=AugmentOptions(), shuffle=True, seed=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.dtype.name == "float32" and x.shape[1:] == (16, 16, 3) and y.dtype.name == "int32"
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        make_tf_dataset(images, labels, batch_size=0)


def centred_disc(size: int = 33) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    return np.repeat(((np.hypot(x, y) < 6) * 200).astype(np.uint8)[None, ..., None], 8, axis=0)


def test_rotation_and_zoom_turn_about_the_centre():
    options = AugmentOptions(flip=True, rotate=True, zoom=0.1, brightness=0.0)
    for image in augment_images(centred_disc(), options, seed=4):
        ys, xs = np.nonzero(image[..., 0] > 100)
        assert abs(ys.mean() - 16) < 0.5 and abs(xs.mean() - 16) < 0.5


def test_same_seed_same_augmentation():
    images = np.random.default_rng(0).integers(0, 255, (4, 24, 24, 3), dtype=np.uint8)
    first = augment_images(images, AugmentOptions(), seed=7)
    assert np.array_equal(first, augment_images(images, AugmentOptions(), seed=7))
    assert not np.array_equal(first, augment_images(images, AugmentOptions(), seed=8))


def test_brightness_shifts_whole_images_within_range():
    flat = np.full((16, 8, 8, 1), 128, dtype=np.uint8)
    shifted = augment_images(flat, AugmentOptions(flip=False, rotate=False, zoom=0.0, brightness=0.2), seed=1)
    per_image = shifted.reshape(16, -1)
    assert (per_image.min(axis=1) == per_image.max(axis=1)).all()  # one shift per image
    assert per_image.min() >= 128 - 52 and per_image.max() <= 128 + 52 and len(set(per_image[:, 0])) > 8


def test_pipeline_reproduces_its_batches_for_a_seed_and_varies_by_epoch():
    images = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    labels = np.zeros(8, dtype=np.int32)

    def epochs(seed):
        dataset = make_tf_dataset(images, labels, batch_size=8, augment=AugmentOptions(), shuffle=True, seed=seed)
        return [next(iter(dataset))[0].numpy() for _ in range(2)]

    first, second = epochs(3), epochs(3)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])  # a new epoch, new augmentations
