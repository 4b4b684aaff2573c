"""A corpus of odd and hostile uploads, built on the fly, each with what must come of it.

Each case is one input file and the outcome of each result it gives, in order: None for "classified", or a piece
of the reason it is refused. An archive gives a result per member. Cases marked `alone` need a request of their own
(they spend a request's budget); the others can share one request.
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from galaxy_core.answers.uploads import UploadLimits
from tests.uploads import encode, exif_rotated_jpeg, galaxy_photo, mixed_uploads, zip_of

# The limits the corpus is run with: 5 MB a file, 50 MB unpacked and 100 megapixels decoded per request.
LIMITS = UploadLimits(file_bytes=5_000_000, unpacked_bytes=50_000_000, pixels=100_000_000)
NOT_AN_IMAGE = "not an image"
DAMAGED = "damaged or incomplete"
UNPACK = "cannot be unpacked"
TOO_SMALL = "too small to show a galaxy"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    outcomes: tuple[str | None, ...]  # per result: None = classified, else a piece of the reason
    alone: bool = False


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds no pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def single_colour_png(side: int, mode: str = "L") -> bytes:
    """A huge image of one colour: tiny on disk, `side` x `side` pixels to decode."""
    return encode(Image.new(mode, (side, side), 7), "PNG", optimize=False, compress_level=9)


def with_bad_crc(png: bytes) -> bytes:
    start = png.index(b"IDAT") + 4
    return png[:start] + bytes([png[start] ^ 0xFF]) + png[start + 1 :]


def damaged_member_zip(method: int) -> bytes:
    """An archive of a good image and one whose compressed data is damaged midway."""
    good = encode(galaxy_photo(), "JPEG")
    bad = encode(galaxy_photo(64), "PNG") * 3
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("good.jpg", good)
        archive.writestr("bad.png", bad)
    data = bytearray(buffer.getvalue())
    start = data.index(b"bad.png") + len(b"bad.png") + 20  # inside the member's compressed data
    data[start : start + 40] = b"\xff" * 40
    return bytes(data)


def encrypted_member_zip() -> bytes:
    """An archive whose member says it is encrypted (zipfile cannot write real encryption)."""
    data = bytearray(zip_of({"secret.jpg": encode(galaxy_photo(), "JPEG")}))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.index(signature) + flag_offset
        data[position] |= 0x01
    return bytes(data)


def eps_file() -> bytes:
    """A PostScript picture: Pillow would hand it to Ghostscript; it must never be tried."""
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n"
    )


def corpus() -> list[Case]:
    jpeg = encode(galaxy_photo(), "JPEG")
    png = encode(galaxy_photo(), "PNG")
    side = 6300  # 39.7 megapixels, under the 40 MP limit for one image
    sixteen_bit = encode(Image.new("I;16", (side, side), 1234), "PNG")
    cases = [Case(name, data, (reason,)) for name, data, reason in mixed_uploads()]
    cases += [
        # Usable, if unusual.
        Case("progressive.jpg", encode(galaxy_photo(), "JPEG", progressive=True), (None,)),
        Case("animated.gif", encode(galaxy_photo(), "GIF"), (None,)),
        Case("photo.webp", encode(galaxy_photo(), "WEBP"), (None,)),
        Case("GALAXY.JPEG", jpeg, (None,)),
        Case("really-a-jpeg.png", jpeg, (None,)),
        Case("галактика.png", png, (None,)),
        Case("eight-pixels.png", encode(Image.new("RGB", (8, 8), "white"), "PNG"), (None,)),
        # Too small to hold a galaxy: the model would see one colour, enlarged.
        Case("one-pixel.png", encode(Image.new("RGB", (1, 1), "white"), "PNG"), (TOO_SMALL,)),
        Case("seven-pixels.png", encode(Image.new("RGB", (7, 7), "white"), "PNG"), (TOO_SMALL,)),
        Case("sliver.png", encode(Image.new("RGB", (2000, 6), "white"), "PNG"), (TOO_SMALL,)),
        Case(
            "float.tif",
            encode(Image.fromarray(np.linspace(0, 1, 4096, dtype=np.float32).reshape(64, 64)), "TIFF"),
            (None,),
        ),
        Case("bilevel.png", encode(Image.new("1", (80, 80), 1), "PNG"), (None,)),
        Case("gray-alpha.png", encode(Image.new("LA", (80, 80), (200, 100)), "PNG"), (None,)),
        Case("rotated-copy.jpg", exif_rotated_jpeg(), (None,)),
        Case("jpeg-with-zip-appended.jpg", jpeg + zip_of({"hidden.png": png}), (None,)),
        Case("line\nbreak\x1b[31m.jpg", jpeg, (None,)),
        # Not images, whatever their names say.
        Case("postscript.jpg", eps_file(), (NOT_AN_IMAGE,)),
        Case("document.png", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n", (NOT_AN_IMAGE,)),
        Case("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', (NOT_AN_IMAGE,)),
        Case("page.jpg", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>", (NOT_AN_IMAGE,)),
        Case("icon.bmp", encode(galaxy_photo(32), "ICO"), (NOT_AN_IMAGE,)),
        Case("netpbm.jpg", encode(galaxy_photo(), "PPM"), (NOT_AN_IMAGE,)),
        Case("noise.jpg", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), (NOT_AN_IMAGE,)),
        Case(
            "pickle.png",
            b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94.",
            (NOT_AN_IMAGE,),
        ),
        # Damaged images.
        Case("jpeg-header-only.jpg", jpeg[:20], (NOT_AN_IMAGE,)),
        Case("half.png", png[: len(png) // 2], (DAMAGED,)),
        Case("bad-crc.png", with_bad_crc(png), (DAMAGED,)),
        Case("no-pixels.png", png_header_only(80, 80), (DAMAGED,)),
        Case("bmp-cut.bmp", encode(galaxy_photo(), "BMP")[:200], (DAMAGED,)),
        # Sizes that would cost memory or time.
        Case("claims-huge.png", png_header_only(100_000, 100_000), ("above the limit",)),
        Case("huge.gif", gif_header_only(7000, 7000), ("above the limit",)),
        Case("huge.tif", encode(Image.new("1", (7000, 7000)), "TIFF", compression="group4"), ("above the limit",)),
        Case("too-big.jpg", b"\xff\xd8" + b"\0" * 5_000_100, ("above the 5 MB limit",)),
        # Archives.
        Case("two.zip", zip_of({"a.jpg": jpeg, "b.png": png}), (None, None)),
        Case("zip-named-as.jpg", zip_of({"inside.png": png}), (None,)),
        Case(
            "traversal.zip",
            zip_of({"../../etc/passwd.jpg": jpeg, "/abs/path.png": png, "C:\\windows\\x.png": png}),
            (None, None, None),
        ),
        Case(
            "with-junk.zip",
            zip_of({"a.jpg": jpeg, "readme.txt": b"hi", "__MACOSX/._a.jpg": b"x"}),
            (None, "not an image file type"),
        ),
        Case("nested.zip", zip_of({"inner.zip": zip_of({"c.jpg": jpeg})}), ("not an image file type",)),
        Case("empty.zip", zip_of({}), ("holds no image files",)),
        Case("damaged.zip", b"PK\x03\x04 this is no archive", ("a damaged zip archive",)),
        Case("truncated.zip", zip_of({"a.jpg": jpeg, "b.png": png})[:-30], ("a damaged zip archive",)),
        Case("broken-deflate.zip", damaged_member_zip(zipfile.ZIP_DEFLATED), (None, UNPACK)),
        Case("broken-lzma.zip", damaged_member_zip(zipfile.ZIP_LZMA), (None, UNPACK)),
        Case("broken-bzip2.zip", damaged_member_zip(zipfile.ZIP_BZIP2), (None, UNPACK)),
        Case("encrypted.zip", encrypted_member_zip(), (UNPACK,)),
        Case("member-bomb.zip", zip_of({"zeros.png": b"\0" * 6_000_000}), ("unpacks to 6.0 MB, above the limit",)),
        Case("many.zip", zip_of({f"{i}.txt": b"" for i in range(1001)}), ("at most 1000",)),
        Case(
            "bad-member.zip",
            zip_of({"a.jpg": jpeg, "fake.png": b"\x89PNG junk", "c.png": png}),
            (None, NOT_AN_IMAGE, None),
        ),
        # Requests of their own: what one request may spend.
        Case("deep-huge.png", sixteen_bit, (None,), alone=True),
        Case(
            "zeros-bomb.zip",
            zip_of(dict.fromkeys((f"z{i:02d}.png" for i in range(12)), bytes(4_900_000))),
            (NOT_AN_IMAGE,) * 10 + ("may unpack 50 MB from archives in all",) * 2,
            alone=True,
        ),
        Case(
            "megapixel-bomb.zip",
            zip_of({f"flat{i}.png": single_colour_png(side) for i in range(3)}),
            (None, None, "would decode more than 100 megapixels"),
            alone=True,
        ),
    ]
    cases.append(Case("twins-in-two-folders.zip", zip_of({"x/same.jpg": jpeg, "y/same.jpg": png}), (None, None)))
    cases.append(Case("duplicates.zip", same_name_twice(jpeg, png), (None, None)))
    return cases


def same_name_twice(first: bytes, second: bytes) -> bytes:
    """An archive with two members of the same name (zipfile warns, and keeps both)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")
        archive.writestr("same.jpg", first)
        archive.writestr("same.jpg", second)
    return buffer.getvalue()


def gif_header_only(width: int, height: int) -> bytes:
    """A GIF that claims a size and holds almost nothing."""
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x4c\x01\x00"
    return b"GIF89a" + screen + frame + b";"
