"""Prepared-dataset cache: uint8 image arrays and factor tables in .npy, described by meta.json.

Layout of a prepared dataset directory (one set of files per split):

    meta.json
    {split}_images.npy   uint8   (N, H, W, 3)
    {split}_factors.npy  float32 (N, F)   target factors, F = len(factor_names)
    {split}_labels.npy   int64   (N,)     index into class_names, -1 where unknown
    {split}_common.npy   float32 (N, C)   common factors, C = len(common_factor_names)

Arrays are opened memory-mapped with allow_pickle=False, so training reads pages on demand and
no file can run code when it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SPLITS = ("reference", "unlabelled", "eval_fit", "eval_score")
FORMAT_VERSION = 1
ARRAYS = ("images", "factors", "labels", "common")


@dataclass(frozen=True)
class Item:
    """One prepared example, as a source's worker function returns it."""

    image: np.ndarray  # (H, W, 3) uint8
    factors: np.ndarray  # (F,) float32
    label: int = -1
    common: np.ndarray | None = None  # (C,) float32


@dataclass(frozen=True)
class Split:
    """One split of a prepared dataset; arrays are read-only memory maps."""

    name: str
    images: np.ndarray  # (N, H, W, 3) uint8
    factors: np.ndarray  # (N, F) float32
    labels: np.ndarray  # (N,) int64
    common: np.ndarray  # (N, C) float32; C = 0 where the source has no common factors

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared dataset directory: `PreparedDataset.open(path)["unlabelled"].images`."""

    path: Path
    meta: dict[str, Any]
    splits: dict[str, Split] = field(repr=False)

    @classmethod
    def open(cls, path: str | Path, verify: bool = False) -> PreparedDataset:
        """Memory-map every split; with verify, also check each file against meta's SHA-256."""
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{path} is not a prepared dataset (no meta.json)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{meta_path}: unsupported format_version {meta.get('format_version')}"
            )
        if verify:
            for name, expected in meta["sha256"].items():
                actual = sha256_file(path / name)
                if actual != expected:
                    raise ValueError(f"{path / name}: SHA-256 {actual} does not match meta.json")
        splits = {}
        for name in meta["sizes"]:
            arrays = {
                key: np.load(path / f"{name}_{key}.npy", mmap_mode="r", allow_pickle=False)
                for key in ARRAYS
            }
            splits[name] = Split(name=name, **arrays)
        return cls(path=path, meta=meta, splits=splits)

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise KeyError(f"no split {split!r}; this dataset has {sorted(self.splits)}")
        return self.splits[split]

    @property
    def source(self) -> str:
        return self.meta["source"]

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    @property
    def factor_names(self) -> list[str]:
        return list(self.meta["factor_names"])

    @property
    def common_factor_names(self) -> list[str]:
        return list(self.meta["common_factor_names"])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class DatasetWriter:
    """Writes splits into `<out>.partial/` and renames it to `out` on `finish`, so an
    interrupted build never leaves a directory that looks complete."""

    def __init__(
        self,
        out: str | Path,
        *,
        resolution: int,
        factor_names: list[str],
        common_factor_names: list[str] | None = None,
        overwrite: bool = False,
    ):
        self.out = Path(out)
        if self.out.exists() and not overwrite:
            raise FileExistsError(f"{self.out} already exists (pass overwrite to replace it)")
        self.tmp = self.out.with_name(self.out.name + ".partial")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self.resolution = resolution
        self.factor_names = list(factor_names)
        self.common_factor_names = list(common_factor_names or [])
        self.sizes: dict[str, int] = {}
        self.started = time.time()

    def write_split(self, name: str, items: Iterable[Item | None], total: int) -> int:
        """Stream up to `total` items into memory-mapped .npy files; None items (skipped
        inputs) leave no row. Returns the number of rows written."""
        r, f, c = self.resolution, len(self.factor_names), len(self.common_factor_names)
        shapes = {
            "images": ((total, r, r, 3), np.uint8),
            "factors": ((total, f), np.float32),
            "labels": ((total,), np.int64),
            "common": ((total, c), np.float32),
        }
        arrays = {
            key: np.lib.format.open_memmap(self._file(name, key), "w+", dtype, shape)
            for key, (shape, dtype) in shapes.items()
        }
        n = 0
        for item in items:
            if item is None:
                continue
            if n == total:
                raise ValueError(f"split {name}: more than the {total} items announced")
            if item.image.shape != (r, r, 3) or item.image.dtype != np.uint8:
                raise ValueError(f"split {name}: image {item.image.shape} {item.image.dtype}")
            arrays["images"][n] = item.image
            arrays["factors"][n] = item.factors
            arrays["labels"][n] = item.label
            if c:
                arrays["common"][n] = item.common
            n += 1
        for arr in arrays.values():
            arr.flush()
        arrays.clear()
        if n < total:
            # Skipped inputs: rewrite each file with only the rows that were filled.
            for key in ARRAYS:
                full = np.load(self._file(name, key), mmap_mode="r", allow_pickle=False)
                kept = np.array(full[:n])
                del full
                np.save(self._file(name, key), kept, allow_pickle=False)
        self.sizes[name] = n
        return n

    def finish(self, **meta: Any) -> Path:
        """Write meta.json (with the caller's source-specific fields) and publish the directory."""
        files = sorted(p.name for p in self.tmp.glob("*.npy"))
        record = {
            "format_version": FORMAT_VERSION,
            "resolution": self.resolution,
            "sizes": self.sizes,
            "factor_names": self.factor_names,
            "common_factor_names": self.common_factor_names,
            "build_seconds": round(time.time() - self.started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sha256": {name: sha256_file(self.tmp / name) for name in files},
            **meta,
        }
        record.setdefault("class_names", [])
        (self.tmp / "meta.json").write_text(json.dumps(record, indent=2) + "\n")
        if self.out.exists():
            shutil.rmtree(self.out)
        self.tmp.rename(self.out)
        log.info("wrote %s (%s)", self.out, ", ".join(f"{k}: {v}" for k, v in self.sizes.items()))
        return self.out

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _file(self, split: str, key: str) -> Path:
        return self.tmp / f"{split}_{key}.npy"
