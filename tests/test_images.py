import io

import numpy as np
import pytest
from PIL import Image

from galaxy_core.data.images import (
    MAX_IMAGE_PIXELS,
    ImageDecodeError,
    PreprocessOptions,
    load_image_file,
    open_image,
    preprocess_array,
    to_grayscale,
)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_rgb_jpeg_decodes_with_its_size():
    data = encode(Image.new("RGB", (40, 30), (200, 100, 50)), "JPEG")
    image, size = open_image(data)
    assert image.mode == "RGB" and size == (40, 30)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, I am a text file renamed to .jpg\n" * 10, "not an image"),
        (encode(Image.new("RGB", (64, 64), "red"), "JPEG")[:200], "damaged or incomplete"),
        (encode(Image.new("RGB", (64, 64), "red"), "PNG")[:60], "damaged or incomplete"),
    ],
    ids=["zero-byte", "text", "truncated-jpeg", "truncated-png"],
)
def test_unusable_bytes_give_a_reason(data, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        open_image(data)


def test_zero_byte_file_on_disk(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty"):
        open_image(empty)


def test_decompression_bomb_is_refused_before_decoding():
    side = int(MAX_IMAGE_PIXELS**0.5) + 10
    data = encode(Image.new("1", (side, side)), "PNG")
    assert len(data) < 1_000_000  # tiny file, huge image
    with pytest.raises(ImageDecodeError, match="above the limit"):
        open_image(data)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (16, 16), 128),
        Image.new("RGBA", (16, 16), (255, 0, 0, 255)),
        Image.new("P", (16, 16), 3),
        Image.new("CMYK", (16, 16), (0, 255, 255, 0)),
        Image.new("LA", (16, 16), (90, 255)),
    ],
    ids=["gray", "rgba", "palette", "cmyk", "gray-alpha"],
)
def test_other_modes_become_rgb(image):
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    converted, _ = open_image(encode(image, fmt))
    assert converted.mode == "RGB"


def test_transparent_pixels_become_black_sky():
    image = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    converted, _ = open_image(encode(image, "PNG"))
    assert np.asarray(converted).max() == 0


def test_sixteen_bit_images_are_scaled_by_their_range():
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    converted, _ = open_image(encode(Image.fromarray(ramp), "PNG"))
    pixels = np.asarray(converted)
    assert pixels.min() == 0 and pixels.max() == 255
    # A plain conversion clips everything above 255 to white; scaling keeps the ramp's middle grey.
    assert 110 < np.median(pixels) < 145


def test_exif_orientation_is_honoured():
    image = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    rotated, original_size = open_image(encode(image, "JPEG", exif=exif))
    assert rotated.size == (20, 40)
    assert original_size == (40, 20)


def test_centre_crop_keeps_the_middle(tmp_path):
    pixels = np.zeros((100, 100, 3), dtype=np.uint8)
    pixels[40:60, 40:60] = 255
    path = tmp_path / "square.png"
    Image.fromarray(pixels).save(path)
    cropped, size = load_image_file(path, PreprocessOptions(image_size=20, crop_fraction=0.2))
    assert size == (100, 100)
    assert cropped.shape == (20, 20, 3) and cropped.min() > 200  # only the bright centre is left


def test_non_square_images_are_cropped_square(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (90, 30), "white").save(path)
    pixels, _ = load_image_file(path, PreprocessOptions(image_size=16))
    assert pixels.shape == (16, 16, 3)


def test_draft_decoding_matches_full_decoding_closely(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 255, (12, 12, 3)), np.ones((36, 36, 1))).astype(np.uint8)
    path = tmp_path / "big.jpg"
    Image.fromarray(smooth).save(path, quality=95)
    fast, _ = load_image_file(path, PreprocessOptions(image_size=32, crop_fraction=0.5))
    full = preprocess_array(np.asarray(Image.open(path).convert("RGB"))[None], PreprocessOptions(32, 0.5))[0]
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 6


def test_grayscale_matches_pil_luma():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    ours = to_grayscale(pixels)[..., 0].astype(int)
    pil = np.asarray(Image.fromarray(pixels).convert("L")).astype(int)
    assert ours.shape == (10, 10) and np.abs(ours - pil).max() <= 1


def test_preprocess_array_sets_size_and_channels():
    batch = np.zeros((3, 69, 69, 3), dtype=np.uint8)
    assert preprocess_array(batch, PreprocessOptions(image_size=32, channels=1)).shape == (3, 32, 32, 1)
    assert preprocess_array(batch[:, :32, :32], PreprocessOptions(image_size=32)).shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="expected uint8 images"):
        preprocess_array(batch.astype(np.float32), PreprocessOptions())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 4}, "image_size must be"),
        ({"image_size": 64.5}, "image_size must be"),
        ({"crop_fraction": 0}, "crop_fraction must be"),
        ({"crop_fraction": 1.5}, "crop_fraction must be"),
        ({"channels": 2}, "channels must be 1"),
    ],
)
def test_bad_preprocess_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreprocessOptions(**kwargs)
