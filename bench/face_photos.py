"""Faces in photos: detection rate, alignment error, and the time per photo of each step.

    python -m bench.face_photos [--scenes 40] [--repeats 3] [--compare]

Printed:
- real faces that ship in scikit-image: the 100 faces of lfw_subset (found) and its 100 other
  patches (false detections); the astronaut (alignment error against eyes marked by hand);
- rendered faces placed into 640x480 scenes at known positions, sizes (90-180 px) and in-plane
  rotations (up to 0, 12, 20 and 30 degrees; for 30 also with the tilted passes always on),
  two per scene: detection rate, false positives, and the alignment
  error (the true eyes mapped through the estimated transform, their distance from the
  targets, as a fraction of the target eye distance);
- a 12-megapixel JPEG (4000x3000, the astronaut's face about 600 px wide): seconds to decode
  it, to find its faces, to align the largest at 32x32, and to paste an edited crop back.

--dump PATH writes the compared images instead, for bench/face_photos_mediapipe.py.

--compare also measures the candidate detectors on the same faces (docs/photos.md): OpenCV's
Haar cascades and scikit-image's LBP cascade, each on the same downscaled, contrast-equalised
copy, and the installed size of what each needs beyond numpy and Pillow.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from photos import align_face, detect_faces, load_photo, paste_back
from photos.detect import (
    ANGLES,
    DETECT_MAX_SIDE,
    FALLBACK_ANGLES,
    MIN_FACE,
    _cascade_path,
    _contrast,
    to_grey,
)
from tests.utils.face_scenes import (
    ASTRONAUT_EYES,
    astronaut,
    background,
    eye_error,
    lfw_subset,
    measure_scenes,
    synthetic_scenes,
)


def quality(scenes: int, seed: int) -> None:
    faces, others = lfw_subset()
    found = sum(bool(detect_faces(image)) for image in faces)
    false = sum(bool(detect_faces(image)) for image in others)
    print(f"lfw_subset: {found}/100 faces found, {false}/100 other patches with a detection")
    face = detect_faces(astronaut())[0]
    print(
        f"astronaut: alignment error {eye_error(face, ASTRONAUT_EYES):.3f} of the eye distance "
        f"(eyes by cascade: {face.eyes_found})"
    )
    settings = [(0.0, ANGLES), (12.0, ANGLES), (20.0, ANGLES), (30.0, ANGLES)]
    settings.append((30.0, (*ANGLES, *FALLBACK_ANGLES)))
    for rotation, angles in settings:
        generated = synthetic_scenes(scenes, seed=seed, faces=2, max_rotation=rotation)
        start = time.perf_counter()
        found = [detect_faces(scene.image, angles=angles) for scene in generated]
        per_scene = (time.perf_counter() - start) / len(generated)
        measured = measure_scenes(generated, found)
        passes = "/".join(f"{a:g}" for a in angles)
        print(
            f"rendered faces, rotation up to +-{rotation:.0f} deg, passes {passes}: "
            f"{measured.summary()}; {per_scene * 1000:.0f} ms per 640x480 scene"
        )


def twelve_megapixels(repeats: int) -> None:
    rng = np.random.default_rng(0)
    photo = background(rng, 3000, 4000)
    face = cv2.resize(astronaut()[40:300, 120:330], (1260, 1560), interpolation=cv2.INTER_CUBIC)
    photo[700:2260, 1400:2660] = face
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        Image.fromarray(photo).save(path, quality=92)
        size_mib = path.stat().st_size / 2**20
        steps: dict[str, list[float]] = {"decode": [], "detect": [], "align": [], "paste": []}
        for _ in range(repeats):
            t0 = time.perf_counter()
            loaded = load_photo(path)
            t1 = time.perf_counter()
            faces = detect_faces(loaded)
            t2 = time.perf_counter()
            aligned = align_face(loaded, faces[0], 32)
            t3 = time.perf_counter()
            pasted = paste_back(loaded, aligned.matrix, aligned.crop[:, ::-1])
            t4 = time.perf_counter()
            for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                steps[name].append(seconds)
        assert pasted.shape == loaded.shape
    print(
        f"12 Mpx JPEG (4000x3000, {size_mib:.1f} MiB, face {faces[0].box[2]:.0f} px wide, "
        f"median of {repeats}):"
    )
    for name, seconds in steps.items():
        print(f"  {name:7s} {statistics.median(seconds) * 1000:7.1f} ms")
    total = sum(statistics.median(s) for name, s in steps.items() if name != "decode")
    print(f"  detect + align + paste {total * 1000:.1f} ms per photo")


def _downscaled(image: np.ndarray) -> tuple[np.ndarray, float]:
    grey = to_grey(image)
    h, w = grey.shape
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    if scale < 1.0:
        grey = cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return _contrast(grey), scale


def _haar(name: str) -> Callable[[np.ndarray], np.ndarray]:
    cascade = cv2.CascadeClassifier(_cascade_path(name))

    def boxes(image: np.ndarray) -> np.ndarray:
        grey, scale = _downscaled(image)
        found = cascade.detectMultiScale(grey, 1.1, 3, minSize=(MIN_FACE, MIN_FACE))
        return np.asarray(found, np.float64).reshape(-1, 4) / scale

    return boxes


def _lbp() -> Callable[[np.ndarray], np.ndarray]:
    import skimage.data
    from skimage.feature import Cascade

    cascade = Cascade(skimage.data.lbp_frontal_face_cascade_filename())

    def boxes(image: np.ndarray) -> np.ndarray:
        grey, scale = _downscaled(image)
        found = cascade.detect_multi_scale(
            img=grey / 255.0,
            scale_factor=1.1,
            step_ratio=1,
            min_size=(MIN_FACE, MIN_FACE),
            max_size=grey.shape,
            min_neighbor_number=3,
        )
        rows = [(d["c"], d["r"], d["width"], d["height"]) for d in found]
        return np.asarray(rows, np.float64).reshape(-1, 4) / scale

    return boxes


def _installed_mib(names: list[str]) -> float:
    total = 0
    for name in names:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
    return total / 2**20


def compare(scenes: int, seed: int) -> None:
    detectors = {
        "OpenCV Haar frontalface_alt2 (chosen)": (
            _haar("haarcascade_frontalface_alt2.xml"),
            ["opencv-python-headless"],
        ),
        "OpenCV Haar frontalface_default": (
            _haar("haarcascade_frontalface_default.xml"),
            ["opencv-python-headless"],
        ),
        "OpenCV Haar frontalface_alt": (
            _haar("haarcascade_frontalface_alt.xml"),
            ["opencv-python-headless"],
        ),
        "scikit-image LBP frontal face": (
            _lbp(),
            ["scikit-image", "scipy", "imageio", "tifffile", "networkx", "lazy-loader"],
        ),
    }
    faces, others = lfw_subset()
    generated = synthetic_scenes(scenes, seed=seed, faces=2)
    print(
        "| detector | lfw faces found | lfw others detected | rendered faces found | "
        "false positives (scenes) | ms per 640x480 scene | installed MiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (boxes, dists) in detectors.items():
        found = sum(len(boxes(image)) > 0 for image in faces)
        false = sum(len(boxes(image)) > 0 for image in others)
        hits = fp = 0
        start = time.perf_counter()
        for scene in generated:
            found_boxes = boxes(scene.image)
            used = set()
            for eyes in scene.eyes:
                mid = eyes.mean(axis=0)
                for i, (x, y, w, h) in enumerate(found_boxes):
                    if x <= mid[0] <= x + w and y <= mid[1] <= y + h:
                        hits += 1
                        used.add(i)
                        break
            fp += len(found_boxes) - len(used)
        ms = (time.perf_counter() - start) / len(generated) * 1000
        total = sum(len(s.eyes) for s in generated)
        print(
            f"| {name} | {found}/100 | {false}/100 | {hits}/{total} ({hits / total:.0%}) | "
            f"{fp} | {ms:.0f} | {_installed_mib(dists):.0f} |"
        )


def dump(path: Path, scenes: int, seed: int) -> None:
    faces, others = lfw_subset()
    generated = synthetic_scenes(scenes, seed=seed, faces=2)
    np.savez(
        path,
        lfw=faces,
        others=others,
        scenes=np.stack([s.image for s in generated]),
        eyes=np.stack([s.eyes for s in generated]),
        astro=astronaut(),
        astro_eyes=ASTRONAUT_EYES,
    )
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40, help="synthetic scenes per setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs on the 12 Mpx JPEG")
    parser.add_argument("--compare", action="store_true", help="also compare the detectors")
    parser.add_argument(
        "--dump",
        type=Path,
        help="only write the compared images to this .npz (for bench/face_photos_mediapipe.py)",
    )
    args = parser.parse_args()
    if args.dump:
        dump(args.dump, args.scenes, args.seed)
        return
    quality(args.scenes, args.seed)
    twelve_megapixels(args.repeats)
    if args.compare:
        compare(args.scenes, args.seed)


if __name__ == "__main__":
    main()
