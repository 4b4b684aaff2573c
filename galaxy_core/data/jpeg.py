"""Fast JPEG decoding for whole datasets: only the centre-crop window, at a reduced DCT scale, in C++ threads.

libjpeg (through TensorFlow's decode_and_crop_jpeg) can skip the rows below the crop window and the inverse DCT
outside it, and decode at 1/2, 1/4 or 1/8 scale for almost nothing. A 40% crop of a 423 px SDSS cutout resized
to 64 px is then decoded at half scale from a 85 px window. This is about twice as fast as a full decode, and
runs on every core without Python's global lock (see docs/benchmarks.md).

Files this path cannot decode (CMYK, damaged, not really JPEG) come back as None; the caller decodes them with
PIL, which also says why a file is unusable. Like Keras' and torchvision's folder loaders, this path does not
apply EXIF orientation: a galaxy's class does not depend on its orientation.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from galaxy_core.data.dataset import ProgressCallback
from galaxy_core.data.images import PreprocessOptions
from galaxy_core.runtime import import_tensorflow

DCT_RATIOS = (1, 2, 4, 8)
BATCH = 64


def _decode_window(data, options: PreprocessOptions):
    """(the model's input (S, S, C) uint8, the original (width, height)) of one JPEG file's bytes (a string tensor):
    the centre-crop window at the coarsest DCT scale that keeps `image_size` pixels across it, then resized."""
    tf = import_tensorflow()

    size = options.image_size
    shape = tf.io.extract_jpeg_shape(data)
    height, width = shape[0], shape[1]
    # libjpeg's CMYK conversion differs from PIL's: leave 4-channel files to PIL.
    tf.debugging.assert_none_equal(shape[2], 4, message="CMYK JPEG")
    crop_side = options.crop_fraction * tf.cast(tf.minimum(height, width), tf.float32)

    def decode_at(ratio: int):
        # libjpeg's scaled size is the ceiling of size / ratio; the window is a square of the shorter side.
        scaled_h, scaled_w = -(-height // ratio), -(-width // ratio)
        side = tf.maximum(
            1, tf.cast(options.crop_fraction * tf.cast(tf.minimum(scaled_h, scaled_w), tf.float32), tf.int32)
        )
        window = tf.stack([(scaled_h - side) // 2, (scaled_w - side) // 2, side, side])
        return tf.io.decode_and_crop_jpeg(data, window, channels=3, ratio=ratio)

    # The coarsest DCT scale that still leaves at least `size` pixels across the crop.
    fits = tf.stack([crop_side / ratio >= size for ratio in DCT_RATIOS])
    branch = tf.reduce_max(tf.where(fits, tf.range(len(DCT_RATIOS)), 0))
    window = tf.switch_case(branch, [lambda ratio=ratio: decode_at(ratio) for ratio in DCT_RATIOS])
    # The DCT scale leaves less than 2x to shrink, where plain bilinear is sharp and cheap; only images too big for
    # the 1/8 scale need the (slower) antialiased filter.
    pixels = tf.cond(
        tf.shape(window)[0] > 2 * size,
        lambda: tf.image.resize(window, (size, size), antialias=True),
        lambda: tf.image.resize(window, (size, size)),
    )
    pixels = tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
    if options.channels == 1:
        pixels = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(pixels, tf.float32))), tf.uint8)
    return pixels, tf.stack([width, height])


def _build_decoder(options: PreprocessOptions):
    tf = import_tensorflow()

    @tf.autograph.experimental.do_not_convert
    def decode(index, path):
        pixels, original_size = _decode_window(tf.io.read_file(path), options)
        return index, pixels, original_size

    return decode


@functools.cache
def _bytes_decoder(options: PreprocessOptions):
    tf = import_tensorflow()

    return tf.function(tf.autograph.experimental.do_not_convert(lambda data: _decode_window(data, options)))


def decode_jpeg_bytes(data: bytes, options: PreprocessOptions) -> np.ndarray | None:
    """One JPEG file's bytes made into the model's input exactly as `decode_jpegs` makes a dataset's: (S, S, C)
    uint8; None where this decoder cannot read it (CMYK, damaged): the caller then decodes it with PIL."""
    tf = import_tensorflow()

    try:
        pixels, _ = _bytes_decoder(options)(tf.constant(data))
    except (tf.errors.OpError, ValueError):
        return None
    return pixels.numpy()


def decode_jpegs(
    paths: list[str], options: PreprocessOptions, progress: ProgressCallback | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (N, S, S, C) uint8, original sizes (N, 2) as (width, height), decoded (N,) bool), in path order.

    Where `decoded` is False this decoder failed and the row is zeros.
    """
    tf = import_tensorflow()

    size = options.image_size
    images = np.zeros((len(paths), size, size, options.channels), dtype=np.uint8)
    sizes = np.zeros((len(paths), 2), dtype=np.int32)
    decoded = np.zeros(len(paths), dtype=bool)
    if not paths:
        return images, sizes, decoded
    pipeline_options = tf.data.Options()
    pipeline_options.threading.private_threadpool_size = os.cpu_count() or 2
    pipeline = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), np.array(paths)))
        .map(_build_decoder(options), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .batch(BATCH)
        .with_options(pipeline_options)
    )
    for indices, pixels, original_sizes in pipeline.as_numpy_iterator():
        images[indices] = pixels
        sizes[indices] = original_sizes
        decoded[indices] = True
        if progress:
            done = int(decoded.sum())
            progress(done, len(paths), f"decoding JPEG files: {done:,}/{len(paths):,}")
    return images, sizes, decoded
