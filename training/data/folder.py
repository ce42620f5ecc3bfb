"""Image folders: a reference directory and an unlabelled directory of arbitrary images.

Every file Pillow can read becomes an RGB image, its shorter side resized to the resolution and
centre-cropped; or, for photos of people (`zoom` set, `python -m training data photos`), its
largest face is found and aligned as the service aligns uploads (photos/), and a photo with no
face is skipped and counted. Files that cannot be read (corrupt, not images, decompression
bombs) are skipped with a warning naming the file; the build goes on. Immediate subdirectories of the unlabelled
directory, if any, name classes (e.g. AffectNet's expressions), which the evaluation splits,
held out of the unlabelled images, keep as labels.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from model.images import fit
from photos import NoFaceError, align_face, largest_face, load_photo
from training.data.cache import DatasetWriter, Item
from training.data.parallel import ordered_map

log = logging.getLogger(__name__)

# Pillow's decompression-bomb threshold (~89 Mpx); None, as in Pillow, would mean no limit.
DEFAULT_MAX_PIXELS: int | None = Image.MAX_IMAGE_PIXELS
NO_FACTORS = np.zeros(0, np.float32)


@dataclass(frozen=True)
class FolderJob:
    path: str
    label: int
    resolution: int
    max_pixels: int | None  # None: no limit, as Pillow reads Image.MAX_IMAGE_PIXELS
    zoom: float | None = None  # None: centre crop; else align the largest face at this framing


@dataclass(frozen=True)
class Loaded:
    """A worker's answer: an item, or the reason the file was skipped."""

    path: str
    item: Item | None
    reason: str = ""
    no_face: bool = False


def list_images(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(path, label) for every non-hidden file under root, sorted, and the class names: the
    immediate subdirectories, or none (label -1) when files lie directly in root."""
    if not root.is_dir():
        raise FileNotFoundError(f"image directory {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    index = {name: i for i, name in enumerate(classes)}
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        label = index[rel.parts[0]] if len(rel.parts) > 1 else -1
        files.append((path, label))
    return files, classes


@contextlib.contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the limit; refuse those images too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


# Photos are decoded at a reduced scale (JPEG draft) whose longer side is still this long: the
# detector looks at 800 pixels, and a face of 3% of that is 50 pixels here, more than a crop needs.
PHOTO_DECODE_SIDE = 1600


def load_image(job: FolderJob) -> Loaded:
    """Decode, orient, convert and fit one file; never raises for a bad file."""
    if job.zoom is not None:
        return load_face(job)
    try:
        with _pixel_limit(job.max_pixels), Image.open(job.path) as opened:
            # JPEG: decode at the smallest power-of-two scale that is still >= the target.
            opened.draft(None, (job.resolution, job.resolution))
            image = ImageOps.exif_transpose(opened)
            fitted = fit(image, job.resolution)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return Loaded(job.path, None, f"refused as a decompression bomb ({e})")
    except Exception as e:  # any decoder error in one file must not stop a build
        return Loaded(job.path, None, f"cannot read as an image ({type(e).__name__}: {e})")
    return Loaded(job.path, Item(np.asarray(fitted, np.uint8), NO_FACTORS, job.label))


def load_face(job: FolderJob) -> Loaded:
    """The largest face of one photo, aligned; never raises for a bad file or a faceless one."""
    assert job.zoom is not None
    try:
        with _pixel_limit(job.max_pixels):
            photo = load_photo(job.path, max_side=PHOTO_DECODE_SIDE)
        aligned = align_face(photo, largest_face(photo), job.resolution, job.zoom)
    except NoFaceError:
        return Loaded(job.path, None, "no face found", no_face=True)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return Loaded(job.path, None, f"refused as a decompression bomb ({e})")
    except Exception as e:  # any decoder error in one file must not stop a build
        return Loaded(job.path, None, f"cannot read as an image ({type(e).__name__}: {e})")
    return Loaded(job.path, Item(aligned.crop, NO_FACTORS, job.label))


def _logged(
    results: Iterator[Loaded], skipped: list[str], no_face: list[str]
) -> Iterator[Item | None]:
    for result in results:
        if result.item is None:
            log.warning("skipping %s: %s", result.path, result.reason)
            skipped.append(result.path)
            if result.no_face:
                no_face.append(result.path)
        yield result.item


def build_folder(
    out: str | Path,
    *,
    reference: str | Path,
    unlabelled: str | Path,
    resolution: int = 64,
    seed: int = 0,
    eval_size: int = 0,
    limit: int | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    zoom: float | None = None,
) -> Path:
    """Prepare two image folders into `out` (see cache.py for the layout). `eval_size` images
    are held out of the unlabelled folder (seeded), half to eval_fit and half to eval_score.
    With `zoom`, each image is a photo whose largest face is aligned at that framing (source
    "photos"); photos with no face are skipped and listed under `no_face` in meta.json."""
    reference_files, _ = list_images(Path(reference))
    unlabelled_files, class_names = list_images(Path(unlabelled))
    if eval_size > len(unlabelled_files):
        raise ValueError(f"eval_size {eval_size} > {len(unlabelled_files)} unlabelled files")
    order = np.random.default_rng(seed).permutation(len(unlabelled_files))
    held_out, kept = order[:eval_size], np.sort(order[eval_size:])
    fit_n = eval_size // 2
    plan = {
        "reference": reference_files,
        "unlabelled": [unlabelled_files[i] for i in kept],
        "eval_fit": [unlabelled_files[i] for i in held_out[:fit_n]],
        "eval_score": [unlabelled_files[i] for i in held_out[fit_n:]],
    }
    writer = DatasetWriter(out, resolution=resolution, factor_names=[], overwrite=overwrite)
    skipped: list[str] = []
    no_face: list[str] = []
    try:
        for split, files in plan.items():
            files = files[:limit] if limit is not None else files
            jobs = [FolderJob(str(p), label, resolution, max_pixels, zoom) for p, label in files]
            results = ordered_map(load_image, jobs, workers=workers, desc=split, progress=progress)
            writer.write_split(split, _logged(results, skipped, no_face), len(jobs))
    except BaseException:
        writer.abort()
        raise
    if skipped:
        log.warning(
            "skipped %d files: %d unreadable, %d with no face",
            len(skipped),
            len(skipped) - len(no_face),
            len(no_face),
        )
    faces = {"zoom": zoom, "no_face": no_face} if zoom is not None else {}
    return writer.finish(
        source="folder" if zoom is None else "photos",
        seed=seed,
        class_names=class_names,
        label_name="subdirectory" if class_names else "",
        reference_dir=str(Path(reference).resolve()),
        unlabelled_dir=str(Path(unlabelled).resolve()),
        skipped=skipped,
        **faces,
    )
