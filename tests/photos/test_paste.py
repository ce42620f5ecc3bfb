"""Paste-back: the inverse alignment, feathered, colour-matched; nothing outside the mask moves."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from photos import align_face, largest_face, paste_back, photo_mask, warp
from photos.paste import crop_mask


@pytest.fixture(scope="module")
def aligned(astronaut_photo):
    return align_face(astronaut_photo, largest_face(astronaut_photo), 32)


def _edit(crop: np.ndarray) -> np.ndarray:
    """A visible change: the face mirrored, its lower half darkened."""
    out = crop[:, ::-1].copy()
    out[16:] //= 2
    return out


def test_pixels_outside_the_mask_are_unchanged_bit_for_bit(astronaut_photo, aligned):
    out = paste_back(astronaut_photo, aligned.matrix, _edit(aligned.crop))
    mask = photo_mask(astronaut_photo.shape, aligned.matrix, 32)
    outside = mask == 0
    assert outside.sum() > 0.9 * outside.size  # the face is a small part of the photo
    assert np.array_equal(out[outside], astronaut_photo[outside])
    changed = (out != astronaut_photo).any(axis=2)
    assert changed.sum() > 1000 and not (changed & outside).any()


def test_a_rotated_face_keeps_the_outside_exact_too(astronaut_photo):
    turned = cv2.warpAffine(
        astronaut_photo, cv2.getRotationMatrix2D((256, 256), 10, 1.0), (512, 512)
    )
    aligned = align_face(turned, largest_face(turned), 32)
    out = paste_back(turned, aligned.matrix, _edit(aligned.crop))
    outside = photo_mask(turned.shape, aligned.matrix, 32) == 0
    assert np.array_equal(out[outside], turned[outside])
    assert (out != turned).any()


def test_the_mask_is_feathered_and_inside_the_crops_square(astronaut_photo, aligned):
    mask = photo_mask(astronaut_photo.shape, aligned.matrix, 32)
    assert mask.max() == 1.0
    soft = (mask > 0) & (mask < 1)
    assert soft.sum() > 0.3 * (mask > 0).sum()  # a wide feather, not a hard edge
    ys, xs = np.nonzero(mask)
    x, y, w, h = aligned.face.box
    assert x - w < xs.min() and xs.max() < x + 2 * w and y - h < ys.min() and ys.max() < y + 2 * h


def test_an_unedited_crop_pastes_back_as_the_photo_nearly(astronaut_photo, aligned):
    out = paste_back(astronaut_photo, aligned.matrix, aligned.crop)
    inside = photo_mask(astronaut_photo.shape, aligned.matrix, 32) > 0
    diff = np.abs(out.astype(int) - astronaut_photo.astype(int))[inside]
    assert diff.mean() < 0.5, diff.mean()  # measured 0.0
    blurred = paste_back(astronaut_photo, aligned.matrix, aligned.crop, keep_detail=False)
    # Without the photo's own detail, the face is the 32x32 crop enlarged: visibly softer.
    assert np.abs(blurred.astype(int) - astronaut_photo.astype(int))[inside].mean() > 3


def test_the_pasted_crop_is_what_aligning_the_result_gives_back(astronaut_photo, aligned):
    edited = _edit(aligned.crop)
    out = paste_back(astronaut_photo, aligned.matrix, edited, match_colour=False, keep_detail=False)
    again = warp(out, aligned.matrix, 32).astype(np.float32)
    u = (np.arange(32) + 0.5) / 32
    core = crop_mask(u[None, :], u[:, None]) == 1.0
    assert core.sum() > 200
    error = np.abs(again - edited.astype(np.float32))[core].mean()
    assert error < 6, error  # measured 2.6: bicubic up, area down, through the photo's scale


def test_the_edit_takes_the_photos_colours(astronaut_photo, aligned):
    tinted = aligned.crop.astype(np.int32)
    tinted[..., 2] += 80
    tinted[..., 0] -= 60
    tinted = np.clip(tinted, 0, 255).astype(np.uint8)
    inside = photo_mask(astronaut_photo.shape, aligned.matrix, 32) == 1.0
    original = astronaut_photo[inside].astype(np.float32).mean(axis=0)
    matched = paste_back(astronaut_photo, aligned.matrix, tinted)[inside].mean(axis=0)
    raw = paste_back(astronaut_photo, aligned.matrix, tinted, match_colour=False)[inside]
    assert np.abs(matched - original).max() < 2, (matched, original)  # measured 0.2
    assert np.abs(raw.mean(axis=0) - original).max() > 40


def test_a_crop_of_the_wrong_shape_is_refused(astronaut_photo, aligned):
    with pytest.raises(ValueError, match="R, R, 3"):
        paste_back(astronaut_photo, aligned.matrix, np.zeros((32, 16, 3), np.uint8))
