import numpy as np
import pytest

from galaxy_core.data import create_dataset
from galaxy_core.data.synthetic import CLASS_NAMES, DIFFICULTIES, render_galaxy


def test_same_seed_same_images_other_seed_other_images():
    first = create_dataset("synthetic", num_images=60, image_size=32, seed=5)
    again = create_dataset("synthetic", num_images=60, image_size=32, seed=5)
    other = create_dataset("synthetic", num_images=60, image_size=32, seed=6)
    for split in first.splits:
        assert np.array_equal(first.splits[split].images, again.splits[split].images)
        assert np.array_equal(first.splits[split].labels, again.splits[split].labels)
    assert not np.array_equal(first.splits["train"].images, other.splits["train"].images)


def test_balanced_classes_uint8_and_requested_size():
    dataset = create_dataset("synthetic", num_images=90, image_size=40)
    assert dataset.class_names == CLASS_NAMES == ("edge", "smooth", "spiral")
    total = sum(dataset.class_counts().values())
    assert total.tolist() == [30, 30, 30]
    images = dataset.splits["train"].images
    assert images.dtype == np.uint8 and images.shape[1:] == (40, 40, 3)
    assert (dataset.splits["train"].original_sizes == 40).all()


def test_grayscale_and_crop_go_through_the_shared_preprocessing():
    dataset = create_dataset("synthetic", num_images=30, image_size=32, crop_fraction=0.5, channels=1)
    assert dataset.splits["train"].images.shape[1:] == (32, 32, 1)
    assert (dataset.splits["train"].original_sizes == 64).all()  # rendered at 32 / 0.5


def galaxy_elongation(image: np.ndarray) -> float:
    """Ratio of the principal second moments of the brightest pixels: 1 round, large elongated."""
    light = image.astype(float).mean(axis=-1)
    mask = light > np.quantile(light, 0.9)
    ys, xs = np.nonzero(mask)
    eigenvalues = np.linalg.eigvalsh(np.cov(np.stack([xs, ys])))
    return float(np.sqrt(eigenvalues[1] / max(eigenvalues[0], 1e-6)))


def test_classes_have_their_shapes_but_overlap():
    rng = np.random.default_rng(0)
    difficulty = DIFFICULTIES["easy"]
    elongation = {
        kind: np.array([galaxy_elongation(render_galaxy(kind, rng, 64, difficulty)) for _ in range(40)])
        for kind in CLASS_NAMES
    }
    # Edge-on disks are long and thin, ellipticals mostly round...
    assert np.median(elongation["edge"]) > 2 * np.median(elongation["smooth"])
    # ...but not separable by shape alone: some ellipticals are as elongated as the roundest edge-on disks.
    assert elongation["smooth"].max() > elongation["edge"].min()


def test_harder_means_noisier():
    def sky_noise(difficulty):
        rng = np.random.default_rng(1)
        corners = [render_galaxy("smooth", rng, 64, DIFFICULTIES[difficulty])[:8, :8] for _ in range(10)]
        return float(np.std(np.stack(corners).astype(float)))

    assert sky_noise("hard") > sky_noise("easy")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"difficulty": "extreme"}, "difficulty must be one of"), ({"num_images": 5}, "num_images must be")],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        create_dataset("synthetic", **options)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown galaxy kind 'irregular'"):
        render_galaxy("irregular", np.random.default_rng(0), 32, DIFFICULTIES["easy"])
