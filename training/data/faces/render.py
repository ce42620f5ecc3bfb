"""Procedural renderer of frontal cartoon faces (Pillow), drawn at 4x and box-downsampled.

Coordinates are fractions of the canvas side. The face is drawn upright and centred over a plain
background, then zoomed, rotated and shifted as a whole, reduced, and lit. Brows, eyes and mouth
are the only parts that read the expression, and nothing drawn over them depends on it, so a
change of expression changes only pixels inside `expression_region`."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

from training.data.faces.factors import N_HAIR_STYLES, NEUTRAL, Common, Expression

SUPERSAMPLE = 4
CENTRE_X, EYE_Y, HEAD_Y = 0.5, 0.47, 0.50
# How much of the frame the face fills. 1.2: head, hair, shoulders and background, as in a loose
# face crop; 1.8: brows to chin, as in the paper's tight aligned crops. At 32x32 an expression
# moves 3.6% of the L1 distance between two people's faces at 1.2 and 8.4% at 1.8, and touches
# 6% and 12% of the pixels (docs/data.md).
ZOOM = 1.2
TIGHT_ZOOM = 1.8
MAX_SHIFT = 0.04  # fraction of the image
MAX_ROTATION = 10.0  # degrees
MAX_LIGHT = 0.35  # brightness gradient across the image, +-35% at the edges
MOUTH_RANGE = (0.13, 0.16)  # half-extent of anything the mouth can draw (x, y), for the region

SKIN = [
    (255, 226, 200),
    (241, 196, 160),
    (224, 172, 130),
    (198, 134, 90),
    (141, 88, 56),
    (90, 58, 40),
]
HAIR = [
    (25, 20, 18),
    (65, 42, 28),
    (115, 75, 42),
    (180, 130, 70),
    (225, 190, 110),
    (165, 70, 35),
    (160, 160, 160),
]
IRIS = [(70, 45, 25), (120, 80, 40), (60, 110, 170), (70, 130, 80), (140, 120, 60), (110, 120, 130)]
LIPS = (180, 90, 90)
MOUTH_INSIDE = (90, 25, 35)


def _palette(colours: list[tuple[int, int, int]], u: float) -> tuple[int, int, int]:
    """Linear interpolation along a list of colours, u in [0, 1]."""
    x = min(max(u, 0.0), 1.0) * (len(colours) - 1)
    i = min(int(x), len(colours) - 2)
    t = x - i
    a, b = colours[i], colours[i + 1]
    r, g, bl = (round(a[k] + t * (b[k] - a[k])) for k in range(3))
    return r, g, bl


def _shade(colour: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, round(c * f))) for c in colour)
    return r, g, b


def _bezier(p0, p1, p2, n: int = 16) -> list[tuple[float, float]]:
    """Points of the quadratic Bezier curve p0 -> p2 with control p1."""
    out = []
    for i in range(n + 1):
        t = i / n
        a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t**2
        out.append((a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1]))
    return out


class _Canvas:
    """An ImageDraw in fractional coordinates."""

    def __init__(self, image: Image.Image):
        self.image = image
        self.size = image.width
        self.draw = ImageDraw.Draw(image)

    def px(self, pts):
        s = self.size
        return [(x * s, y * s) for x, y in pts]

    def ellipse(self, cx, cy, rx, ry, fill, outline=None, width=0.0):
        s = self.size
        box = ((cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s)
        self.draw.ellipse(box, fill=fill, outline=outline, width=max(0, round(width * s)))

    def polygon(self, pts, fill, outline=None, width=0.0):
        self.draw.polygon(
            self.px(pts), fill=fill, outline=outline, width=max(0, round(width * self.size))
        )

    def line(self, pts, fill, width):
        self.draw.line(
            self.px(pts), fill=fill, width=max(1, round(width * self.size)), joint="curve"
        )
        r = width / 2  # round caps
        for x, y in (pts[0], pts[-1]):
            self.ellipse(x, y, r, r, fill)


def _head_outline(c: Common, n: int = 72, grow: float = 0.0) -> list[tuple[float, float]]:
    """Superellipse head, narrower towards the chin; exponent 2 (oval) to 3 (square jaw)."""
    rx, ry = (r + grow for r in _head_size(c))
    exponent = 2.0 + 1.0 * c.jaw
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        ct, st = math.cos(t), math.sin(t)
        x = abs(ct) ** (2 / exponent) * math.copysign(1, ct)
        y = abs(st) ** (2 / exponent) * math.copysign(1, st)
        taper = 1.0 - 0.22 * max(y, 0.0) ** 2  # y > 0 is the lower half
        pts.append((CENTRE_X + rx * x * taper, HEAD_Y + ry * y))
    return pts


def _head_size(c: Common) -> tuple[float, float]:
    return 0.25 + 0.06 * c.face_width, 0.31 + 0.06 * c.face_length


def _eye_half_spacing(c: Common) -> float:
    return 0.10 + 0.04 * c.eye_spacing


def _mouth_y(c: Common) -> float:
    return EYE_Y + _nose_length(c) + 0.10


def _nose_length(c: Common) -> float:
    return 0.09 + 0.05 * c.nose_length


def _draw_body(cv: _Canvas, c: Common, skin) -> None:
    clothing = tuple(round(255 * v) for v in colorsys.hsv_to_rgb(c.clothing_hue, 0.55, 0.7))
    rx, ry = _head_size(c)
    cv.ellipse(CENTRE_X, 1.12, 0.45, 0.3, clothing)
    neck_top = HEAD_Y + ry * 0.6
    cv.polygon(
        [
            (CENTRE_X - 0.09, neck_top),
            (CENTRE_X + 0.09, neck_top),
            (CENTRE_X + 0.1, 0.86),
            (CENTRE_X - 0.1, 0.86),
        ],
        _shade(skin, 0.85),
    )
    cv.ellipse(CENTRE_X, 0.86, 0.1, 0.035, _shade(skin, 0.85))
    for side in (-1, 1):
        cv.ellipse(CENTRE_X + side * rx * 0.98, EYE_Y + 0.04, 0.035, 0.06, _shade(skin, 0.93))


def _draw_hair_back(cv: _Canvas, c: Common, hair, style: int) -> None:
    rx, ry = _head_size(c)
    top = HEAD_Y - ry - 0.03
    if style == 1:  # long, to the shoulders
        cv.polygon(
            [
                (CENTRE_X - rx - 0.04, HEAD_Y),
                (CENTRE_X + rx + 0.04, HEAD_Y),
                (CENTRE_X + rx + 0.08, 0.95),
                (CENTRE_X - rx - 0.08, 0.95),
            ],
            hair,
        )
        cv.ellipse(CENTRE_X, HEAD_Y, rx + 0.04, HEAD_Y - top, hair)
    elif style == 2:  # bob, to the jaw
        cv.ellipse(CENTRE_X, HEAD_Y + 0.02, rx + 0.05, ry + 0.02, hair)
    elif style == 5:  # bun on top
        cv.ellipse(CENTRE_X, top - 0.02, 0.07, 0.06, hair)


def _draw_hair_top(cv: _Canvas, c: Common, hair, skin, style: int) -> None:
    """A cap over the top of the head down to a hairline; the hairline shape is the style."""
    rx, ry = _head_size(c)
    outline = _head_outline(c, grow=0.025)
    # Hairline height above the eyes: a fringe sits low, a receding cut high.
    hairline = {0: 0.17, 1: 0.16, 2: 0.15, 3: 0.125, 4: 0.19, 5: 0.17}[style]
    y_line = EYE_Y - hairline
    arc = [p for p in outline if p[1] <= y_line]
    arc.sort(key=lambda p: p[0])
    if style == 3:  # straight fringe with a slight dip in the middle
        inner = _bezier((CENTRE_X + rx, y_line), (CENTRE_X, y_line + 0.03), (CENTRE_X - rx, y_line))
    elif style == 0:  # side parting
        inner = _bezier(
            (CENTRE_X + rx, y_line + 0.02),
            (CENTRE_X + 0.05, y_line - 0.04),
            (CENTRE_X - rx, y_line + 0.01),
        )
    else:
        inner = _bezier(
            (CENTRE_X + rx, y_line + 0.03),
            (CENTRE_X, y_line - 0.06),
            (CENTRE_X - rx, y_line + 0.03),
        )
    colour = hair if style != 4 else tuple((h + s) // 2 for h, s in zip(hair, skin, strict=True))
    # Upper arc left to right, sides down to the hairline ends, hairline back right to left.
    pts = [
        (CENTRE_X - rx - 0.025, y_line + 0.05),
        *arc,
        (CENTRE_X + rx + 0.025, y_line + 0.05),
        *inner,
    ]
    cv.polygon(pts, colour)
    if style in (1, 2):  # side locks over the temples
        for side in (-1, 1):
            x = CENTRE_X + side * (rx + 0.01)
            cv.polygon(
                [
                    (x, y_line - 0.02),
                    (x - side * 0.05, y_line + 0.02),
                    (x - side * 0.01, EYE_Y + 0.12),
                    (x + side * 0.03, EYE_Y + 0.12),
                ],
                hair,
            )


def _draw_nose(cv: _Canvas, c: Common, skin) -> None:
    length, width = _nose_length(c), 0.025 + 0.02 * c.nose_width
    tip = EYE_Y + length
    shadow = _shade(skin, 0.78)
    cv.line(
        _bezier(
            (CENTRE_X + 0.012, EYE_Y + 0.02), (CENTRE_X + 0.022, tip - 0.03), (CENTRE_X + 0.01, tip)
        ),
        shadow,
        0.008,
    )
    cv.line(
        _bezier(
            (CENTRE_X - width, tip - 0.005),
            (CENTRE_X, tip + 0.025),
            (CENTRE_X + width, tip - 0.005),
        ),
        shadow,
        0.009,
    )


def _draw_eye(cv: _Canvas, c: Common, e: Expression, side: int) -> None:
    cx, cy = CENTRE_X + side * _eye_half_spacing(c), EYE_Y
    rx = 0.048
    ry = 0.034 * (0.08 + 1.25 * e.eye_open)  # at rest 0.024; shut ~0.003; wide 0.045
    s = cv.size
    box = (round((cx - rx) * s), round((cy - ry) * s), round((cx + rx) * s), round((cy + ry) * s))
    w, h = box[2] - box[0], max(1, box[3] - box[1])
    patch = Image.new("RGB", (w, h), (250, 250, 250))
    d = ImageDraw.Draw(patch)
    ir = 0.024 * s
    iris = _palette(IRIS, c.eye_colour)
    px, py = w / 2, (cy * s) - box[1]
    d.ellipse((px - ir, py - ir, px + ir, py + ir), fill=iris)
    d.ellipse((px - ir * 0.45, py - ir * 0.45, px + ir * 0.45, py + ir * 0.45), fill=(15, 10, 10))
    d.ellipse((px + ir * 0.2, py - ir * 0.6, px + ir * 0.55, py - ir * 0.25), fill=(255, 255, 255))
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, w - 1, h - 1), fill=255)
    cv.image.paste(patch, box[:2], mask)
    # Upper lid: a dark arc along the top of the eye opening.
    lid = _bezier(
        (cx - rx * 1.05, cy + 0.003), (cx, cy - 2 * ry - 0.004), (cx + rx * 1.05, cy + 0.003)
    )
    cv.line(lid, (40, 25, 20), 0.009)


def _draw_brow(cv: _Canvas, c: Common, e: Expression, hair, side: int) -> None:
    spacing = _eye_half_spacing(c)
    y = EYE_Y - 0.078 - 0.08 * (e.brow_height - 0.5)
    tilt = 0.07 * (e.brow_tilt - 0.5)  # inner end above the outer end when positive
    inner = (CENTRE_X + side * (spacing - 0.05), y - tilt)
    outer = (CENTRE_X + side * (spacing + 0.055), y + tilt * 0.3 + 0.008)
    mid = ((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2 - 0.016)
    # Darker than the hair, so light hair on light skin still shows its brows.
    colour = _blend(_shade(hair, 0.7), (30, 20, 15), 0.35)
    cv.line(_bezier(inner, mid, outer, 10), colour, 0.028)


def _draw_mouth(cv: _Canvas, c: Common, e: Expression, skin) -> None:
    cy = _mouth_y(c)
    curve = 2 * (e.mouth_curve - 0.5)  # -1 .. 1
    opening = 0.11 * e.mouth_open
    # Wider when smiling, narrower when the jaw drops without a smile (the "O" of surprise).
    half_w = 0.085 * (1 + 0.25 * max(curve, 0.0) - 0.4 * e.mouth_open * (1 - abs(curve)))
    lift = 0.04 * curve
    asym = 0.05 * e.mouth_asymmetry
    left = (CENTRE_X - half_w, cy - lift + 0.01 * e.mouth_asymmetry)
    right = (CENTRE_X + half_w + 0.015 * e.mouth_asymmetry, cy - lift - asym)
    lips = _shade(_blend(LIPS, skin, 0.4), 0.75)
    if opening < 0.012:
        cv.line(_bezier(left, (CENTRE_X, cy + lift), right), lips, 0.02)
        return
    upper_raise = 0.6 * opening * (0.3 + e.mouth_asymmetry)  # a raised upper lip (disgust)
    upper = _bezier(
        left, (CENTRE_X + 0.02 * e.mouth_asymmetry, cy + lift - 0.4 * opening - upper_raise), right
    )
    lower = _bezier(right, (CENTRE_X, cy + lift + 1.6 * opening), left)
    cv.polygon(upper + lower, MOUTH_INSIDE)
    if curve > 0.2 or e.mouth_asymmetry > 0.3:  # teeth show under a raised upper lip
        teeth_h = min(0.45 * opening, 0.022)
        shifted = [(x, y + teeth_h) for x, y in reversed(upper)]
        cv.polygon(upper + shifted, (245, 242, 235))
    cv.line(upper, lips, 0.014)
    cv.line(lower, lips, 0.016)


def _blend(a, b, t: float) -> tuple[int, int, int]:
    return tuple(round(x + t * (y - x)) for x, y in zip(a, b, strict=True))


def _draw_face_layer(
    c: Common, e: Expression, size: int, background=(0, 0, 0), region_only: bool = False
) -> Image.Image:
    """The upright, unzoomed face on a (size, size) RGB canvas; with region_only, an L mask of
    everything the expression can change instead."""
    if region_only:
        layer = Image.new("L", (size, size), 0)
        cv = _Canvas(layer)
        spacing = _eye_half_spacing(c)
        cv.polygon(
            [
                (CENTRE_X - spacing - 0.085, EYE_Y - 0.16),
                (CENTRE_X + spacing + 0.085, EYE_Y - 0.16),
                (CENTRE_X + spacing + 0.085, EYE_Y + 0.05),
                (CENTRE_X - spacing - 0.085, EYE_Y + 0.05),
            ],
            255,
        )
        mx, my = MOUTH_RANGE
        cy = _mouth_y(c)
        cv.polygon(
            [
                (CENTRE_X - mx, cy - my),
                (CENTRE_X + mx, cy - my),
                (CENTRE_X + mx, cy + my),
                (CENTRE_X - mx, cy + my),
            ],
            255,
        )
        return layer
    layer = Image.new("RGB", (size, size), background)
    cv = _Canvas(layer)
    skin = _palette(SKIN, c.skin_tone)
    hair = _palette(HAIR, c.hair_colour)
    style = round(c.hair_style * (N_HAIR_STYLES - 1))
    _draw_hair_back(cv, c, hair, style)
    _draw_body(cv, c, skin)
    cv.polygon(_head_outline(c), skin)
    _draw_nose(cv, c, skin)
    for side in (-1, 1):
        _draw_eye(cv, c, e, side)
        _draw_brow(cv, c, e, hair, side)
    _draw_mouth(cv, c, e, skin)
    _draw_hair_top(cv, c, hair, skin, style)
    return layer


def _pose(layer: Image.Image, c: Common, fill, zoom: float) -> Image.Image:
    """Zoom, rotate about the head centre and shift, as one affine resample of the whole layer.
    Nearest-neighbour at 4x is ~20x faster than bicubic in Pillow, and the box reduction that
    follows averages 16 samples per pixel, which hides its aliasing."""
    size = layer.width
    angle = math.radians(MAX_ROTATION * 2 * (c.rotation - 0.5))
    dx = MAX_SHIFT * 2 * (c.shift_x - 0.5) * size
    dy = MAX_SHIFT * 2 * (c.shift_y - 0.5) * size
    ox, oy = CENTRE_X * size, HEAD_Y * size
    # Output pixel p maps to input ox + R(-angle) (p - o - d) / zoom.
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    a, b, d, e = cos, -sin, sin, cos
    tx, ty = -(ox + dx), -(oy + dy)
    matrix = (a, b, a * tx + b * ty + ox, d, e, d * tx + e * ty + oy)
    return layer.transform(
        (size, size), Image.Transform.AFFINE, matrix, Image.Resampling.NEAREST, fillcolor=fill
    )


def render_face(
    common: Common, expression: Expression = NEUTRAL, resolution: int = 64, zoom: float = ZOOM
) -> np.ndarray:
    """(resolution, resolution, 3) uint8 image of one face, framed by `zoom`."""
    size = resolution * SUPERSAMPLE
    bg = _background(common)
    face = _pose(_draw_face_layer(common, expression, size, bg), common, bg, zoom)
    small = np.asarray(face.reduce(SUPERSAMPLE), np.float32)
    return np.clip(np.round(small * _lighting(common, resolution)[..., None]), 0, 255).astype(
        np.uint8
    )


def _background(c: Common) -> tuple[int, int, int]:
    rgb = colorsys.hsv_to_rgb(c.background_hue, 0.35, 0.35 + 0.6 * c.background_value)
    r, g, b = (round(255 * v) for v in rgb)
    return r, g, b


def _lighting(c: Common, resolution: int) -> np.ndarray:
    """(H, W) brightness gain: a linear ramp across the image in the light's direction."""
    coords = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution - 0.5
    angle = 2 * math.pi * c.light_angle
    ramp = math.cos(angle) * coords[None, :] + math.sin(angle) * coords[:, None]
    return 1.0 + 2 * MAX_LIGHT * c.light_strength * ramp


def expression_region(common: Common, resolution: int = 64, zoom: float = ZOOM) -> np.ndarray:
    """(resolution, resolution) bool: the pixels that a change of expression may touch, posed
    like the face and grown by one pixel for the resampling filters."""
    size = resolution * SUPERSAMPLE
    mask = _pose(_draw_face_layer(common, NEUTRAL, size, region_only=True), common, 0, zoom)
    small = np.asarray(mask.reduce(SUPERSAMPLE)) > 0
    grown = small.copy()
    grown[1:] |= small[:-1]
    grown[:-1] |= small[1:]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    return grown
