"""Real photos for the faces models: find the faces (detect.py), align one as the training data
are aligned (align.py), and paste an edited crop back into the photo (paste.py)."""

from photos.align import TIGHT_ZOOM, Aligned, align_face, eye_targets, face_matrix, invert, warp
from photos.detect import Face, NoFaceError, detect_faces, largest_face, select_face
from photos.load import load_photo
from photos.paste import paste_back, photo_mask

__all__ = [
    "TIGHT_ZOOM",
    "Aligned",
    "Face",
    "NoFaceError",
    "align_face",
    "detect_faces",
    "eye_targets",
    "face_matrix",
    "invert",
    "largest_face",
    "load_photo",
    "paste_back",
    "photo_mask",
    "select_face",
    "warp",
]
