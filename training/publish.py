"""Directories that appear whole: written beside their place and renamed into it at the end."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def written_whole(target: Path) -> Iterator[Path]:
    """Yields `.NAME.writing` beside `target` to write into; once the block ends it replaces
    `target`, so that a reader finds the previous directory or the new one, never a part."""
    staging = target.with_name(f".{target.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    yield staging
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
