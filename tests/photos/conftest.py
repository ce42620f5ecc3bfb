from __future__ import annotations

import pytest

from photos import detect_faces
from tests.utils.face_scenes import astronaut, synthetic_scenes


@pytest.fixture(scope="session")
def astronaut_photo():
    return astronaut()


@pytest.fixture(scope="session")
def scenes():
    """16 scenes of 640x480, two rendered faces each, 90-180 px, rotated up to +-12 degrees."""
    return synthetic_scenes(16, seed=0, faces=2)


@pytest.fixture(scope="session")
def detections(scenes):
    return [detect_faces(scene.image) for scene in scenes]
