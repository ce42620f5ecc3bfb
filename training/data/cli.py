"""`python -m training data {digits,faces,folder,photos}`: build a prepared dataset and say where it
went; `python -m training data preview`: save an image grid of one."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

from photos import TIGHT_ZOOM as PHOTO_ZOOM
from training.data.cache import PreparedDataset
from training.data.digits import DigitSizes, build_digits
from training.data.faces.build import FaceSizes, build_faces
from training.data.faces.render import TIGHT_ZOOM, ZOOM
from training.data.folder import DEFAULT_MAX_PIXELS, build_folder
from training.data.mnist import MnistError
from training.data.parallel import default_workers
from training.data.preview import class_grid, save_grid, split_grid

_REPO = Path(__file__).resolve().parents[2]
# data/ under the checkout (git-ignored); data/ under the working directory for an installed copy.
DATA_ROOT = _REPO / "data" if (_REPO / "pyproject.toml").is_file() else Path("data")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="build a prepared dataset (images + factors)")
    sources = parser.add_subparsers(dest="source", required=True)

    digits = sources.add_parser("digits", help="digit style from MNIST (paper 5.1, A.3.1)")
    digits.add_argument(
        "--mnist-dir",
        type=Path,
        help="directory with the four MNIST IDX files (raw or .gz); default: fetch into "
        f"{DATA_ROOT / 'mnist'}",
    )
    _add_common(digits, "digits")
    digits.set_defaults(func=_run_digits)

    faces = sources.add_parser("faces", help="synthetic cartoon faces with expressions")
    faces.add_argument(
        "--unaligned",
        action="store_true",
        help="vary in-plane shift and rotation (default: aligned face crops, as in paper A.3.2)",
    )
    faces.add_argument(
        "--zoom",
        type=float,
        default=ZOOM,
        help=f"how much of the frame the face fills: {ZOOM} head, hair and shoulders (default); "
        f"{TIGHT_ZOOM} brows to chin, the tight crop of the paper's faces",
    )
    _add_common(faces, "faces")
    faces.set_defaults(func=_run_faces)

    folder = sources.add_parser("folder", help="a reference and an unlabelled image directory")
    _add_folders(folder)
    _add_common(folder, "folder")
    folder.set_defaults(func=_run_folder, zoom=None)

    photos = sources.add_parser(
        "photos",
        help="photos of people: the largest face of each, found and aligned (docs/photos.md)",
    )
    _add_folders(photos, "photos of neutral faces", "photos of faces with any expression")
    photos.add_argument(
        "--zoom",
        type=float,
        default=PHOTO_ZOOM,
        help=f"framing of the aligned face, as the synthetic faces' --zoom (default {PHOTO_ZOOM}: "
        "brows to chin, the framing the sRb-VAE faces model trains on)",
    )
    _add_common(photos, "photos")
    photos.set_defaults(func=_run_folder)

    preview = sources.add_parser("preview", help="save an image grid of a prepared dataset")
    preview.add_argument("dataset", type=Path, help="a prepared dataset directory")
    preview.add_argument("--out", type=Path, required=True, help="PNG file to write")
    preview.add_argument(
        "--splits", nargs="+", default=["reference", "unlabelled"], help="one block per split"
    )
    preview.add_argument("--rows", type=int, default=2, help="rows per split (default 2)")
    preview.add_argument("--cols", type=int, default=12, help="images per row (default 12)")
    preview.add_argument(
        "--by-class", metavar="SPLIT", help="instead: one row per class of this split"
    )
    preview.add_argument("--scale", type=int, default=1, help="integer upscaling of the grid")
    preview.set_defaults(func=_run_preview)


def _add_folders(
    parser: argparse.ArgumentParser,
    reference: str = "reference images",
    unlabelled: str = "unlabelled images",
) -> None:
    parser.add_argument("--reference", type=Path, required=True, help=reference)
    parser.add_argument(
        "--unlabelled",
        type=Path,
        required=True,
        help=f"{unlabelled}; immediate subdirectories, if any, name classes",
    )
    parser.add_argument(
        "--eval-size",
        type=int,
        default=0,
        help="unlabelled images held out for the eval_fit/eval_score splits (default 0)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="refuse larger images as decompression bombs (default %(default)s)",
    )


def _add_common(parser: argparse.ArgumentParser, source: str) -> None:
    parser.add_argument(
        "--out", type=Path, help=f"output directory (default {DATA_ROOT}/{source}-RESOLUTION)"
    )
    parser.add_argument(
        "--resolution", type=_resolution, default=64, help="image side (default 64)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="at most this many images per split")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="processes (default: all cores)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _resolution(text: str) -> int:
    value = int(text)
    if not 8 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"resolution must be in [8, 1024], got {value}")
    return value


def _options(args: argparse.Namespace) -> dict:
    return {
        "resolution": args.resolution,
        "seed": args.seed,
        "workers": args.workers,
        "overwrite": args.overwrite,
        "progress": not args.no_progress,
    }


def _out(args: argparse.Namespace) -> Path:
    return args.out or DATA_ROOT / f"{args.source}-{args.resolution}"


def _user_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Errors a user can fix (bad input files, an existing output) as one line, not a traceback."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (MnistError, FileExistsError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1

    return wrapper


@_user_errors
def _run_digits(args: argparse.Namespace) -> int:
    start = time.time()
    path = build_digits(
        _out(args),
        mnist_dir=args.mnist_dir,
        sizes=DigitSizes().limited(args.limit),
        default_mnist_dir=DATA_ROOT / "mnist",
        **_options(args),
    )
    return _report(path, start)


@_user_errors
def _run_faces(args: argparse.Namespace) -> int:
    start = time.time()
    path = build_faces(
        _out(args),
        sizes=FaceSizes().limited(args.limit),
        aligned=not args.unaligned,
        zoom=args.zoom,
        **_options(args),
    )
    return _report(path, start)


@_user_errors
def _run_folder(args: argparse.Namespace) -> int:
    start = time.time()
    path = build_folder(
        _out(args),
        reference=args.reference,
        unlabelled=args.unlabelled,
        eval_size=args.eval_size,
        limit=args.limit,
        max_pixels=args.max_pixels,
        zoom=args.zoom,
        **_options(args),
    )
    return _report(path, start)


@_user_errors
def _run_preview(args: argparse.Namespace) -> int:
    dataset = PreparedDataset.open(args.dataset)
    if args.by_class:
        grid = class_grid(dataset, args.by_class, args.cols)
    else:
        grid = split_grid(dataset, args.splits, args.rows, args.cols)
    path = save_grid(grid, args.out, args.scale)
    print(f"wrote {path.resolve()} ({grid.shape[1] * args.scale}x{grid.shape[0] * args.scale})")
    return 0


def _report(path: Path, start: float) -> int:
    dataset = PreparedDataset.open(path)
    sizes = ", ".join(f"{name} {len(split)}" for name, split in dataset.splits.items())
    megabytes = sum(f.stat().st_size for f in path.iterdir()) / 2**20
    print(f"wrote {path.resolve()}")
    print(f"  {dataset.source} {dataset.resolution}x{dataset.resolution}: {sizes}")
    if "no_face" in dataset.meta:
        no_face = len(dataset.meta["no_face"])
        unreadable = len(dataset.meta.get("skipped", [])) - no_face
        print(f"  skipped {no_face} photos with no face found, {unreadable} unreadable files")
    print(f"  {megabytes:.1f} MiB in {time.time() - start:.1f} s")
    return 0
