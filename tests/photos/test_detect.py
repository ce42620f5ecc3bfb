"""Detection and eye finding, measured on real faces that ship in scikit-image and on rendered
faces placed into scenes at known positions, sizes and rotations."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from photos import NoFaceError, detect, detect_faces, largest_face, select_face
from tests.utils.face_scenes import (
    ASTRONAUT_EYES,
    background,
    eye_error,
    lfw_subset,
    measure_scenes,
)


def test_the_astronauts_face_and_eyes_are_found_within_5_percent_of_the_eye_distance(
    astronaut_photo,
):
    faces = detect_faces(astronaut_photo)
    assert len(faces) == 1
    face = faces[0]
    x, y, w, h = face.box
    assert face.eyes_found
    assert all(x <= ex <= x + w and y <= ey <= y + h for ex, ey in ASTRONAUT_EYES)
    assert eye_error(face, ASTRONAUT_EYES) < 0.045  # measured .032


def test_lfw_faces_are_found_and_the_other_patches_are_not():
    faces, others = lfw_subset()
    found = sum(bool(detect_faces(image)) for image in faces)
    false = sum(bool(detect_faces(image)) for image in others)
    assert found >= 95, f"{found}/100 faces"
    assert false <= 2, f"{false}/100 non-faces with a detection"


def test_rendered_faces_in_scenes_are_found_and_aligned_to_a_few_percent(scenes, detections):
    m = measure_scenes(scenes, detections)
    assert m.faces == 32
    assert m.rate >= 0.6, m.summary()  # measured 72% (74% on 80 such faces)
    assert m.false_positives <= 2, m.summary()
    assert np.median(m.errors) < 0.06, m.summary()  # measured .037
    assert np.quantile(m.errors, 0.9) < 0.12, m.summary()  # measured .080


def test_several_faces_are_all_returned_largest_first(detections):
    assert sum(len(faces) >= 2 for faces in detections) >= 6
    for faces in detections:
        areas = [f.area for f in faces]
        assert areas == sorted(areas, reverse=True)


def test_no_face_is_an_empty_list_and_largest_face_raises():
    empty = background(np.random.default_rng(0), 480, 640)
    assert detect_faces(empty) == []
    with pytest.raises(NoFaceError, match="no face"):
        largest_face(empty)
    assert issubclass(NoFaceError, ValueError)


@pytest.mark.parametrize("shape", [(1, 1), (3000, 1), (1, 3000), (20, 20)])
def test_photos_too_small_or_thin_for_a_face_have_none(shape):
    assert detect_faces(np.full((*shape, 3), 128, np.uint8)) == []


def test_a_12_megapixel_photo_is_searched_on_a_downscaled_copy(astronaut_photo, monkeypatch):
    big = cv2.resize(astronaut_photo, (4000, 4000), interpolation=cv2.INTER_CUBIC)  # 16 Mpx
    searched = []
    face_cascade, eye_cascade = detect._cascades()

    class Recording:
        def __init__(self, cascade):
            self.cascade = cascade

        def detectMultiScale(self, image, **kwargs):  # noqa: N802 (OpenCV's name)
            searched.append(image.shape)
            return self.cascade.detectMultiScale(image, **kwargs)

    pair = (Recording(face_cascade), Recording(eye_cascade))
    monkeypatch.setattr(detect, "_cascades", lambda: pair)
    face = largest_face(big)
    assert max(max(shape) for shape in searched) == detect.DETECT_MAX_SIDE
    scale = 4000 / 512
    true = (ASTRONAUT_EYES + 0.5) * scale - 0.5
    assert face.box[2] > 400
    assert eye_error(face, true) < 0.05


def test_faces_report_json_ready_boxes(astronaut_photo):
    record = largest_face(astronaut_photo).to_dict()
    assert set(record) == {"box", "left_eye", "right_eye", "eyes_found", "angle"}
    assert all(isinstance(v, float) for v in record["box"])


def test_another_face_is_chosen_by_index_or_by_box(detections):
    faces = next(found for found in detections if len(found) >= 2)
    assert select_face(faces) is faces[0]
    assert select_face(faces, index=1) is faces[1]
    x, y, w, h = faces[1].box
    assert select_face(faces, box=(x + 5, y - 5, w, h)) is faces[1]
    with pytest.raises(IndexError, match="out of range"):
        select_face(faces, index=len(faces))
    with pytest.raises(NoFaceError, match="inside the box"):
        select_face(faces, box=(-100.0, -100.0, 10.0, 10.0))
    with pytest.raises(NoFaceError):
        select_face([])


@pytest.mark.parametrize("degrees", [-30.0, 30.0])
def test_a_tilted_face_is_found_by_a_tilted_pass(astronaut_photo, degrees):
    turn = cv2.getRotationMatrix2D((255.5, 255.5), degrees, 1.0)
    tilted = cv2.warpAffine(astronaut_photo, turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    true = ASTRONAUT_EYES @ turn[:, :2].T + turn[:, 2]
    assert detect_faces(tilted, fallback_angles=()) == []  # the upright pass misses it
    faces = detect_faces(tilted)  # the tilted passes, as nothing else was found
    assert len(faces) == 1 and faces[0].angle == math.copysign(25.0, degrees)
    assert eye_error(faces[0], true) < 0.05
    assert detect_faces(tilted, angles=(0.0, -25.0, 25.0), fallback_angles=()) == faces
