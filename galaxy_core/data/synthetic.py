"""Procedurally rendered galaxies: the built-in, offline dataset.

Each image is rendered as photon counts in three bands and then displayed like an SDSS colour cutout:

- smooth: a Sérsic-profile elliptical (index 2-6), round to elongated, red.
- spiral: Sérsic bulge + exponential disk + 2-4 logarithmic arms (pitch 12-35 degrees), face-on to ~65
  degrees inclined, sometimes barred; blue arms around a redder bulge.
- edge: a thin disk seen (almost) edge-on with a bulge from none to large, sometimes boxy, often a dust lane.

Then a random position angle, size, brightness and colour jitter, foreground stars and neighbours, a Gaussian
PSF, sky + Poisson noise, and an asinh stretch. The classes overlap as real ones do: faint, weak-armed or
round spirals look smooth; elongated ellipticals and inclined spirals approach edge-on disks; at low
signal-to-noise, detail drowns. `difficulty` sets the noise and the resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from galaxy_core.data.cache import cached_dataset
from galaxy_core.data.dataset import SPLIT_NAMES, Dataset, ProgressCallback, make_splits, stratified_split
from galaxy_core.data.images import PreprocessOptions, image_bytes, preprocess_array
from galaxy_core.data.sources import (
    SEED,
    TEST_FRACTION,
    VAL_FRACTION,
    DatasetChoice,
    DatasetSource,
    DatasetSpec,
    SourceOption,
    register_source,
)
from galaxy_core.errors import InvalidInputError

CLASS_NAMES = ("edge", "smooth", "spiral")  # the order of gz1-3class's folders
RED = np.array([1.0, 0.78, 0.55], dtype=np.float32)
WHITE = np.array([0.9, 0.88, 0.85], dtype=np.float32)
BLUE = np.array([0.6, 0.78, 1.0], dtype=np.float32)
SKY_COUNTS = 100.0


@dataclass(frozen=True)
class Difficulty:
    snr_range: tuple[float, float]  # mean surface brightness over sky noise, drawn log-uniformly
    psf_range: tuple[float, float]  # PSF sigma as a fraction of the image size
    resolution: float  # rendered at this fraction of the size, then upsampled
    arm_range: tuple[float, float]  # spiral arm contrast


DIFFICULTIES = {
    "easy": Difficulty((6.0, 40.0), (0.008, 0.016), 1.0, (0.6, 0.95)),
    "normal": Difficulty((3.0, 25.0), (0.012, 0.025), 1.0, (0.35, 0.9)),
    "hard": Difficulty((0.8, 8.0), (0.015, 0.03), 0.5, (0.15, 0.8)),
}


def _sersic(radius: np.ndarray, effective_radius: float, index: float) -> np.ndarray:
    b = 2 * index - 1 / 3 + 4 / (405 * index)
    # The floor keeps the cusp of high-index profiles finite at the centre pixel.
    scaled = np.maximum(radius, 0.35) / effective_radius
    return np.exp(-b * (scaled ** (1 / index) - 1))


def _unit(profile: np.ndarray) -> np.ndarray:
    return profile / profile.sum()


def _jitter(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    return np.clip(colour + rng.normal(0, 0.06, 3), 0.3, 1.1).astype(np.float32)


def _smooth(rng, u, v, scale):
    axis_ratio = 1 - 0.7 * rng.beta(1.2, 2.0)
    radius = np.hypot(u, v / axis_ratio)
    body = _unit(_sersic(radius, scale * rng.uniform(0.5, 1.3), rng.uniform(2.0, 6.0)))
    return body[..., None] * _jitter(rng, RED)


def _spiral(rng, u, v, scale, arm_range):
    inclination = rng.uniform(0.4, 1.0)  # cos(i): axis ratio of the projected disk
    v_disk = v / inclination
    radius = np.hypot(u, v_disk)
    angle = np.arctan2(v_disk, u)
    arms = rng.choice([2, 2, 2, 3, 4])
    pitch = math.radians(rng.uniform(12, 35))
    winding = rng.choice([-1, 1]) / math.tan(pitch)
    phase = arms * (angle - winding * np.log(radius / scale + 1e-3)) + rng.uniform(0, 2 * math.pi)
    arm_profile = (0.5 * (1 + np.cos(phase))) ** rng.uniform(1.5, 4.0)
    contrast = rng.uniform(*arm_range) * (1 - np.exp(-((radius / (0.6 * scale)) ** 2)))
    disk = np.exp(-radius / scale)
    smooth_disk = _unit(disk * (1 - contrast))
    arm_light = _unit(disk * contrast * arm_profile + 1e-12)
    bulge = _unit(
        _sersic(np.hypot(u, v / max(inclination, 0.7)), scale * rng.uniform(0.15, 0.4), rng.uniform(1.5, 4.0))
    )
    bulge_fraction = rng.uniform(0.08, 0.45)
    arm_fraction = (1 - bulge_fraction) * rng.uniform(0.4, 0.7)
    image = (
        bulge_fraction * bulge[..., None] * _jitter(rng, RED)
        + (1 - bulge_fraction - arm_fraction) * smooth_disk[..., None] * _jitter(rng, WHITE)
        + arm_fraction * arm_light[..., None] * _jitter(rng, BLUE)
    )
    if rng.random() < 0.3:
        bar_angle = angle - rng.uniform(0, math.pi)
        bar_u, bar_v = radius * np.cos(bar_angle), radius * np.sin(bar_angle)
        bar = _unit(_sersic(np.hypot(bar_u, bar_v / 0.3), scale * rng.uniform(0.5, 0.9), 0.5))
        image = image + rng.uniform(0.08, 0.2) * bar[..., None] * _jitter(rng, RED)
    return image


def _edge(rng, u, v, scale):
    length = scale * rng.uniform(1.0, 1.5)
    thickness = length * rng.uniform(0.08, 0.28)
    # sech^2 written with exp(-2|z|) so that it cannot overflow far from the plane.
    vertical = np.exp(-2 * np.abs(v) / thickness)
    disk = _unit(np.exp(-np.abs(u) / length) * vertical / (1 + vertical) ** 2)
    boxiness = 2.0 if rng.random() < 0.7 else rng.uniform(2.5, 3.5)
    bulge_axis_ratio = rng.uniform(0.5, 1.0)
    bulge_radius = (np.abs(u) ** boxiness + np.abs(v / bulge_axis_ratio) ** boxiness) ** (1 / boxiness)
    bulge = _unit(_sersic(bulge_radius, length * rng.uniform(0.15, 0.4), rng.uniform(1.0, 4.0)))
    bulge_fraction = rng.uniform(0.0, 0.45)
    image = (1 - bulge_fraction) * disk[..., None] * _jitter(rng, WHITE) + bulge_fraction * bulge[..., None] * _jitter(
        rng, RED
    )
    if rng.random() < 0.5:
        offset = thickness * rng.uniform(-0.4, 0.4)
        width = thickness * rng.uniform(0.3, 0.6)
        lane = rng.uniform(0.4, 0.9) * np.exp(-0.5 * ((v - offset) / width) ** 2 - (u / (2 * length)) ** 2)
        # Dust dims blue light more than red.
        image = image * (1 - lane[..., None] * np.array([0.8, 0.9, 1.0], dtype=np.float32))
    return image


def _add_field_objects(rng, image, x, y, scale):
    """Foreground stars (points, blurred by the PSF later) and the odd small neighbouring galaxy."""
    size = image.shape[0]
    if rng.random() < 0.35:
        for _ in range(rng.integers(1, 4)):
            row, col = rng.integers(0, size, 2)
            colour = RED + rng.uniform(0, 1) * (BLUE - RED)
            image[row, col] += 10 ** rng.uniform(-2.0, -0.3) * colour
    if rng.random() < 0.2:
        angle = rng.uniform(0, 2 * math.pi)
        distance = size * rng.uniform(0.3, 0.45)
        dx, dy = x - distance * math.cos(angle), y - distance * math.sin(angle)
        blob = _unit(_sersic(np.hypot(dx, dy / rng.uniform(0.4, 1.0)), scale * rng.uniform(0.15, 0.35), 2.0))
        image += rng.uniform(0.05, 0.3) * blob[..., None] * _jitter(rng, RED)
    return image


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian PSF as two small matrix products (separable, no FFT needed at these sizes)."""
    index = np.arange(image.shape[0], dtype=np.float32)
    kernel = np.exp(-0.5 * ((index[:, None] - index[None, :]) / sigma) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)
    channels_first = image.transpose(2, 0, 1)
    return (kernel @ channels_first @ kernel.T).transpose(1, 2, 0)


def render_galaxy(kind: str, rng: np.random.Generator, size: int, difficulty: Difficulty) -> np.ndarray:
    """One galaxy of class `kind` as a uint8 RGB image of shape (size, size, 3)."""
    grid = max(16, round(size * difficulty.resolution))
    y, x = np.mgrid[0:grid, 0:grid].astype(np.float32) + 0.5 - grid / 2
    x -= rng.normal(0, 0.03 * grid)
    y -= rng.normal(0, 0.03 * grid)
    position_angle = rng.uniform(0, math.pi)
    u = x * math.cos(position_angle) + y * math.sin(position_angle)
    v = -x * math.sin(position_angle) + y * math.cos(position_angle)
    scale = grid * rng.uniform(0.08, 0.15)
    if kind == "smooth":
        light = _smooth(rng, u, v, scale)
    elif kind == "spiral":
        light = _spiral(rng, u, v, scale, difficulty.arm_range)
    elif kind == "edge":
        light = _edge(rng, u, v, scale)
    else:
        raise InvalidInputError(f"unknown galaxy kind {kind!r}; expected one of {CLASS_NAMES}")
    light = _add_field_objects(rng, light.astype(np.float32), x, y, scale)

    sky_sigma = math.sqrt(SKY_COUNTS)
    snr = 10 ** rng.uniform(*np.log10(difficulty.snr_range))
    total_counts = snr * sky_sigma * (2 * scale) ** 2 * math.pi
    counts = _blur(light * total_counts, grid * rng.uniform(*difficulty.psf_range))
    observed = rng.poisson(np.maximum(counts, 0) + SKY_COUNTS) - SKY_COUNTS
    # asinh stretch, shared by the three bands so colours survive: linear in the noise, log in the core.
    softening = 2.5 * sky_sigma
    # Cores saturate, as in survey colour images.
    ceiling = float(np.quantile(counts, 0.995)) * rng.uniform(0.6, 1.5)
    stretched = np.arcsinh(observed / softening) / math.asinh(max(ceiling, softening) / softening)
    pixels = np.clip(12 + 243 * stretched, 0, 255).astype(np.uint8)
    if grid != size:
        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))
    return pixels


def _render_size(options: PreprocessOptions) -> int:
    """Galaxies are rendered at the size whose centre crop is the input size (at most 512 px), then cropped."""
    return min(512, round(options.image_size / options.crop_fraction))


def _decoded_bytes(spec: DatasetSpec) -> int:
    """The rendered images, then the preprocessed ones."""
    count, options = spec.option("num_images", 3000), spec.preprocess
    return count * _render_size(options) ** 2 * 3 + image_bytes(count, options)


def _render_dataset(options, num_images, difficulty, seed, val_fraction, test_fraction, progress) -> Dataset:
    render_size = _render_size(options)
    labels = np.random.default_rng(seed).permutation(np.arange(num_images) % len(CLASS_NAMES)).astype(np.int32)
    # One generator per image: an image depends only on (seed, index), whatever else changes.
    generators = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(num_images)]
    rendered = np.empty((num_images, render_size, render_size, 3), dtype=np.uint8)
    step = max(1, num_images // 50)
    for index, (label, rng) in enumerate(zip(labels, generators, strict=True)):
        rendered[index] = render_galaxy(CLASS_NAMES[label], rng, render_size, DIFFICULTIES[difficulty])
        if progress and ((index + 1) % step == 0 or index + 1 == num_images):
            progress(index + 1, num_images, f"rendering synthetic galaxies: {index + 1:,}/{num_images:,}")
    images = preprocess_array(rendered, options)
    source_ids = np.array([f"synthetic-{seed}-{i:06d}" for i in range(num_images)])
    sizes = np.full((num_images, 2), render_size, dtype=np.int32)
    parts = stratified_split(labels, (val_fraction, test_fraction), seed)
    splits = make_splits(images, labels, source_ids, sizes, dict(zip(SPLIT_NAMES, parts, strict=True)))
    return Dataset(
        name="synthetic",
        class_names=CLASS_NAMES,
        splits=splits,
        preprocess=options,
        description=f"{num_images:,} rendered galaxies, difficulty {difficulty}, seed {seed}",
    )


def load_synthetic(
    options: PreprocessOptions,
    *,
    num_images: int = 3000,
    difficulty: str = "normal",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Dataset:
    """Render a balanced, seeded set of galaxies (identical for identical arguments)."""
    if difficulty not in DIFFICULTIES:
        raise InvalidInputError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    if not isinstance(num_images, int) or not 30 <= num_images <= 100_000:
        raise InvalidInputError(f"num_images must be a whole number from 30 to 100000, got {num_images!r}")
    key = {
        "source": "synthetic",
        "render": [num_images, difficulty, seed],
        "preprocess": options,
        "split": [val_fraction, test_fraction],
    }
    return cached_dataset(
        cache_dir,
        key,
        lambda: _render_dataset(options, num_images, difficulty, seed, val_fraction, test_fraction, progress),
    )


register_source(
    DatasetSource(
        name="synthetic",
        title="Synthetic galaxies (built in, offline)",
        load=load_synthetic,
        options=(
            SourceOption(
                "num_images",
                "how many galaxies",
                minimum=30,
                maximum=100_000,
                step=300,
                on_page=True,
                flag="--num-images",
            ),
            SourceOption(
                "difficulty",
                "harder: more noise, a wider blur and lower resolution",
                str,
                choices=tuple(DIFFICULTIES),
                on_page=True,
                flag="--difficulty",
            ),
            replace(SEED, on_page=True),
            VAL_FRACTION,
            TEST_FRACTION,
        ),
        label=lambda spec: f"synthetic, {spec.option('difficulty', 'normal')}",
        discover=lambda settings: [DatasetChoice("synthetic (built in, offline)", DatasetSpec.of("synthetic"))],
        from_text=lambda text, settings: DatasetSpec.of("synthetic") if text == "synthetic" else None,
        text_help="'synthetic'",
        decoded_bytes=_decoded_bytes,
    )
)
