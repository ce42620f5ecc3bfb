"""Prepared datasets for reference-based training: digits, synthetic faces, image folders.

Build with `python -m training data ...`; read with `PreparedDataset.open(path)`.
"""

from training.data.cache import SPLITS, PreparedDataset, Split

__all__ = ["SPLITS", "PreparedDataset", "Split"]
