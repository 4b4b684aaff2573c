"""Convolution in numpy, checked against maps worked out by hand: padding, stride, pooling, output sizes."""

import numpy as np
import pytest

from galaxy_core.convolution import (
    KERNELS,
    convolve,
    output_size,
    output_size_in_words,
    parse_kernel,
    pool,
)

IMAGE = np.arange(16, dtype=np.float32).reshape(4, 4)  # rows 0-3, 4-7, 8-11, 12-15


def test_valid_convolution_by_hand():
    ones = np.ones((3, 3))
    # Each output is the sum of a 3x3 patch: top-left 0+1+2+4+5+6+8+9+10 = 45, and so on.
    np.testing.assert_array_equal(convolve(IMAGE, ones), [[45, 54], [81, 90]])
    # Sobel x on a ramp that grows by 1 to the right: (1*2 + 2*2 + 1*2) = 8 everywhere, not flipped.
    np.testing.assert_array_equal(convolve(IMAGE, KERNELS["Sobel x"]), [[8, 8], [8, 8]])
    np.testing.assert_array_equal(convolve(IMAGE, KERNELS["identity"]), IMAGE[1:3, 1:3])


def test_same_padding_and_stride_by_hand():
    ones = np.ones((3, 3))
    same = convolve(IMAGE, ones, padding="same")
    assert same.shape == (4, 4)
    assert same[0, 0] == 0 + 1 + 4 + 5  # the corner sees zeros beyond the edge
    assert same[1, 1] == 45
    # Stride 2, "same": 2x2 out; Keras pads one zero row and column at the end only, so the windows cover rows (and
    # columns) 0-2 and 2-4: 2+3+6+7+10+11 = 39, 8+9+10+12+13+14 = 66, 10+11+14+15 = 50.
    strided = convolve(IMAGE, ones, stride=2, padding="same")
    np.testing.assert_array_equal(strided, [[45, 39], [66, 50]])
    np.testing.assert_array_equal(convolve(np.arange(25.0).reshape(5, 5), ones, stride=2), [[54, 72], [144, 162]])


def test_pooling_by_hand():
    np.testing.assert_array_equal(pool(IMAGE, "max"), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(pool(IMAGE, "average"), [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(pool(np.arange(25.0).reshape(5, 5), "max"), [[6, 8], [16, 18]])  # edge dropped
    assert pool(IMAGE, "none") is IMAGE


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [
        (64, 3, 1, "valid", 62),
        (64, 5, 2, "valid", 30),
        (64, 3, 1, "same", 64),
        (64, 3, 2, "same", 32),
        (65, 3, 2, "same", 33),
        (5, 5, 1, "valid", 1),
    ],
)
def test_output_size_arithmetic_matches_the_maps(size, kernel, stride, padding, expected):
    assert output_size(size, kernel, stride, padding) == expected
    assert convolve(np.zeros((size, size)), np.ones((kernel, kernel)), stride, padding).shape == (expected, expected)
    assert output_size_in_words(size, kernel, stride, padding).split(" = ")[-1].startswith(str(expected))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 3; 4 5 6", "3x3 or 5x5"),
        ("a b c; 1 2 3; 1 2 3", "numbers only"),
        ("", "empty"),
        ("1 2; 3 4", "got 2x2"),
        ("1 2 3; 4 5; 6 7 8", "3x3 or 5x5"),
        ("inf 0 0; 0 0 0; 0 0 0", "finite"),
    ],
)
def test_typed_kernels_that_are_not_kernels_are_explained(text, message):
    with pytest.raises(ValueError, match=message):
        parse_kernel(text)


def test_typed_kernels_and_bad_settings():
    np.testing.assert_array_equal(parse_kernel("0, -1, 0\n-1, 5, -1\n0, -1, 0"), KERNELS["sharpen"])
    assert parse_kernel("1 " * 5 + ";" + ("0 " * 5 + ";") * 4).shape == (5, 5)
    with pytest.raises(ValueError, match="does not fit in a 2 px image"):
        convolve(np.zeros((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="too small for 2x2 pooling"):
        pool(np.zeros((1, 1)), "max")
    with pytest.raises(ValueError, match="stride must be"):
        output_size(8, 3, 0)


@pytest.mark.parametrize(
    ("size", "side", "stride", "padding"), [(4, 3, 2, "same"), (7, 5, 2, "same"), (9, 3, 3, "valid")]
)
def test_the_maps_are_what_a_keras_convolution_computes(size, side, stride, padding):
    import keras

    rng = np.random.default_rng(size)
    image, kernel = rng.normal(size=(size, size)).astype("float32"), rng.normal(size=(side, side)).astype("float32")
    expected = keras.ops.conv(image[None, ..., None], kernel[..., None, None], strides=stride, padding=padding)
    np.testing.assert_allclose(convolve(image, kernel, stride, padding), np.asarray(expected)[0, ..., 0], atol=1e-4)
