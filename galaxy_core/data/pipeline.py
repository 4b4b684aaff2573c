"""tf.data input pipelines from in-memory uint8 arrays: shuffle, batch, augment on the batch, prefetch."""

from __future__ import annotations

import numpy as np

from galaxy_core.data.augment import AugmentOptions, augment_batch
from galaxy_core.errors import InvalidInputError


def make_tf_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    augment: AugmentOptions | None = None,
    shuffle: bool = False,
    seed: int = 0,
):
    """Batches of (float32 images in 0-255, int32 labels); models rescale inside themselves.

    Augmentation runs on whole batches in the input pipeline, in parallel with the model's step; each batch
    draws a fresh seed from a seeded stream that changes every epoch, so runs are reproducible for a seed.
    """
    import tensorflow as tf

    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    # Shuffle and batch indices, then gather whole batches: one op per batch instead of one per image.
    all_images, all_labels = tf.constant(images), tf.constant(labels.astype(np.int32))
    dataset = tf.data.Dataset.range(len(images))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    # The functions are plain TensorFlow (their branches test Python settings): autograph would parse this file's
    # source for each lambda, about 1.3 s of a run of seconds.
    plain = tf.autograph.experimental.do_not_convert
    dataset = dataset.batch(batch_size).map(
        plain(lambda indices: (tf.gather(all_images, indices), tf.gather(all_labels, indices))),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if augment is not None and augment.enabled:
        batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, batch_seeds).map(
            plain(lambda batch, batch_seed: (augment_batch(batch[0], augment, batch_seed), batch[1])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(plain(lambda x, y: (tf.cast(x, tf.float32), y)), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
