"""MediaPipe's BlazeFace on the images of bench.face_photos, for the detector table in
docs/photos.md. MediaPipe cannot be installed beside this project (the last wheel that ships its
face models, 0.10.21, needs numpy < 2), so this runs in a separate environment, on the images
that bench.face_photos writes:

    python -m bench.face_photos --dump /tmp/faces.npz
    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.21
    /tmp/mp/bin/python bench/face_photos_mediapipe.py /tmp/faces.npz

Printed for the short-range (0) and full-range (1) models: the lfw_subset faces found and
other patches detected, the rendered faces found and the false detections, milliseconds per
640x480 scene, and the alignment error of its eye keypoints (median and 90th percentile on the
rendered faces, and on the astronaut), measured as bench.face_photos measures it.
"""

from __future__ import annotations

import sys
import time

import mediapipe as mp
import numpy as np

TARGETS = np.array([[8.59, 13.77], [22.41, 13.77]])  # photos.eye_targets(32)


def eye_error(estimated: np.ndarray, true: np.ndarray) -> float:
    s, d = estimated[1] - estimated[0], TARGETS[1] - TARGETS[0]
    scale = np.hypot(*d) / np.hypot(*s)
    angle = np.arctan2(d[1], d[0]) - np.arctan2(s[1], s[0])
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    linear = np.array([[a, -b], [b, a]])
    mapped = true @ linear.T + (TARGETS[0] - linear @ estimated[0])
    return float(np.linalg.norm(mapped - TARGETS, axis=1).mean() / np.hypot(*d))


def measure(data, model: int) -> None:
    detector = mp.solutions.face_detection.FaceDetection(
        model_selection=model, min_detection_confidence=0.5
    )

    def detect(image: np.ndarray) -> list[tuple[float, float, float, float, np.ndarray]]:
        h, w = image.shape[:2]
        result = detector.process(np.ascontiguousarray(image))
        found = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            points = detection.location_data.relative_keypoints[:2]  # the two eyes
            eyes = np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in points])
            eyes = eyes[np.argsort(eyes[:, 0])]
            found.append((box.xmin * w, box.ymin * h, box.width * w, box.height * h, eyes))
        return found

    faces = sum(bool(detect(x)) for x in data["lfw"])
    others = sum(bool(detect(x)) for x in data["others"])
    start = time.perf_counter()
    results = [detect(scene) for scene in data["scenes"]]
    ms = (time.perf_counter() - start) / len(results) * 1000
    hits = false = 0
    errors = []
    for found, scene_eyes in zip(results, data["eyes"], strict=True):
        used = set()
        for true in scene_eyes:
            mid = true.mean(axis=0)
            for i, (x, y, w, h, eyes) in enumerate(found):
                if i not in used and x <= mid[0] <= x + w and y <= mid[1] <= y + h:
                    hits += 1
                    used.add(i)
                    errors.append(eye_error(eyes, true))
                    break
        false += len(found) - len(used)
    astronaut = detect(data["astro"])
    astro = eye_error(astronaut[0][4], data["astro_eyes"]) if astronaut else float("nan")
    err = np.array(errors or [np.nan])
    print(
        f"mediapipe model {model}: lfw faces {faces}/100, others {others}/100, rendered "
        f"{hits}/{sum(len(e) for e in data['eyes'])}, false {false}, {ms:.0f} ms per scene, "
        f"alignment error median {np.median(err):.3f} p90 {np.quantile(err, 0.9):.3f}, "
        f"astronaut {astro:.3f}"
    )


def main() -> None:
    data = np.load(sys.argv[1], allow_pickle=False)
    for model in (0, 1):
        measure(data, model)


if __name__ == "__main__":
    main()
