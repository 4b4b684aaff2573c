"""tf.data input pipelines from in-memory uint8 arrays: shuffle, batch, augment on the batch, prefetch."""

from __future__ import annotations

import numpy as np

from galaxy_core.data.augment import AugmentOptions, apply_layers, build_augmentation_layers


def make_tf_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    augment: AugmentOptions | None = None,
    shuffle: bool = False,
    seed: int | None = None,
):
    """Batches of (float32 images in 0-255, int32 labels); models rescale inside themselves.

    Augmentation runs on whole batches in the input pipeline, in parallel with the model's step.
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y),
                                            num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None and augment.enabled:
        layers = build_augmentation_layers(augment, seed)
        dataset = dataset.map(lambda x, y: (apply_layers(layers, x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
