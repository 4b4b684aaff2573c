import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

from galaxy_core.data import DatasetError, create_dataset
from galaxy_core.data.galaxy10 import VARIANTS, DownloadError, download_galaxy10
from tests.helpers import write_galaxy10


def test_sdss_file_loads_with_its_class_names(tmp_path):
    path = write_galaxy10(tmp_path / "Galaxy10.h5")
    dataset = create_dataset("galaxy10", path=str(path), image_size=32)
    assert dataset.class_names == VARIANTS["sdss"].class_names
    assert sum(len(s) for s in dataset.splits.values()) == 40
    assert dataset.splits["train"].images.shape[1:] == (32, 32, 3)
    assert (dataset.splits["train"].original_sizes == 69).all()
    assert all(len(s) >= 4 for s in dataset.splits.values())


def test_decals_is_recognised_by_image_size_and_cached(tmp_path):
    path = write_galaxy10(tmp_path / "g.h5", count=20, size=256)
    first = create_dataset("galaxy10", path=str(path), image_size=32, crop_fraction=0.5, cache_dir=tmp_path / "c")
    assert first.class_names == VARIANTS["decals"].class_names
    assert len(list((tmp_path / "c" / "datasets").glob("galaxy10-decals-*.npz"))) == 1
    second = create_dataset("galaxy10", path=str(path), image_size=32, crop_fraction=0.5, cache_dir=tmp_path / "c")
    assert np.array_equal(first.splits["test"].images, second.splits["test"].images)


@pytest.mark.parametrize(
    ("arrange", "message"),
    [
        (lambda p: write_galaxy10(p, keys=("images",)), r"lacks the HDF5 key\(s\) \['ans'\]"),
        (lambda p: write_galaxy10(p, size=50), "Galaxy10 SDSS has 69 px"),
        (lambda p: write_galaxy10(p, labels=np.full(40, 12)), "labels must be 0-9"),
        (lambda p: p.write_text("not hdf5"), "not a readable HDF5 file"),
        (lambda p: None, "does not exist"),
    ],
    ids=["missing-key", "unknown-size", "bad-labels", "not-hdf5", "missing-file"],
)
def test_bad_galaxy10_files(tmp_path, arrange, message):
    path = tmp_path / "Galaxy10.h5"
    arrange(path)
    with pytest.raises(DatasetError, match=message):
        create_dataset("galaxy10", path=str(path))


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file, honouring `Range: bytes=N-` as real file servers do."""

    payload = b""
    ranges_seen: list

    def do_GET(self):
        start = 0
        header = self.headers.get("Range")
        if header:
            start = int(header.removeprefix("bytes=").rstrip("-"))
            self.ranges_seen.append(start)
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    payload = write_galaxy10(tmp_path / "served.h5", count=12).read_bytes()
    handler = type("Handler", (RangeHandler,), {"payload": payload, "ranges_seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/Galaxy10.h5", payload, handler
    server.shutdown()


def test_download_verifies_the_checksum_and_reports_progress(tmp_path, file_server):
    url, payload, _ = file_server
    calls = []
    path = download_galaxy10(
        "sdss",
        tmp_path / "dl",
        url=url,
        sha256=hashlib.sha256(payload).hexdigest(),
        progress=lambda done, total, message: calls.append((done, total)),
    )
    assert path.read_bytes() == payload and path.name == "Galaxy10.h5"
    assert calls[-1] == (len(payload), len(payload))
    assert create_dataset("galaxy10", path=str(path)).num_classes == 10


def test_download_resumes_a_partial_file(tmp_path, file_server):
    url, payload, handler = file_server
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "Galaxy10.h5.part").write_bytes(payload[:1000])
    path = download_galaxy10("sdss", dest, url=url, sha256=hashlib.sha256(payload).hexdigest())
    assert handler.ranges_seen == [1000]
    assert path.read_bytes() == payload
    assert not (dest / "Galaxy10.h5.part").exists()


def test_a_damaged_download_is_removed_with_a_clear_message(tmp_path, file_server):
    url, _, _ = file_server
    with pytest.raises(DownloadError, match="arrived damaged: SHA-256"):
        download_galaxy10("sdss", tmp_path, url=url, sha256="0" * 64)
    assert not list(tmp_path.glob("Galaxy10.h5*"))


def test_offline_download_says_so(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match="seems to be offline"):
        download_galaxy10("decals", tmp_path, url=f"http://127.0.0.1:{port}/Galaxy10_DECals.h5", timeout=2)


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown Galaxy10 variant 'hubble'"):
        download_galaxy10("hubble", "/tmp")
