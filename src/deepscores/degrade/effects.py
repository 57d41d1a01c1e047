"""The degradation effects: each a named function with declared parameters, in one registry.

A *photometric* effect changes the page image only (`Photometric.apply(image, params, rng)`); the
label maps and boxes are untouched. A *geometric* effect moves pixels: it returns a `Step` (a
homography or a smooth displacement field), and `warp.py` composes all of a page's steps into one
transform that is applied to the image and the label maps together.

Images are uint8 greyscale, 255 = paper. Every random choice comes from the `numpy.random.Generator`
handed in (seeded per page and effect, see apply.py); none uses a global RNG, and OpenCV is only used
for deterministic filters (its own RNG is never touched).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Params = dict[str, float]
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: the values a preset may ask for (``bounds``) and the range drawn by default."""

    name: str
    bounds: tuple[float, float]
    default: tuple[float, float]
    integer: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Step:
    """One geometric step. ``matrix``: forward 3×3 homography (source → page, pixel-centre coordinates).
    ``field``: the inverse of a smooth warp, page point → displacement to its source point; applied
    as ``source = p + field(p)``. ``background``: grey level shown where the page left the frame
    (None: the page edge is repeated, as on a scanner's white lid)."""

    matrix: np.ndarray | None = None
    field: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    background: float | None = None


@dataclass(frozen=True)
class Effect:
    name: str
    kind: str                      # "photometric" | "geometric"
    params: tuple[ParamSpec, ...]
    fn: Callable
    doc: str

    def spec(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)


EFFECTS: dict[str, Effect] = {}


def effect(kind: str, *params: ParamSpec):
    """Register a function as the effect of its name (the module's one registry)."""
    def register(fn: Callable) -> Callable:
        EFFECTS[fn.__name__] = Effect(fn.__name__, kind, params, fn, (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return register


# -- helpers --------------------------------------------------------------------------------------
def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """A smooth random field of ``shape`` (float32, mean ≈ 0, std ≈ 1) with about ``cells`` blobs
    across the longer side: a small random grid, resized up with bicubic interpolation."""
    h, w = shape
    gy, gx = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.standard_normal((gy, gx)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _coarse_field(shape: tuple[int, int], fn: Callable[[np.ndarray, np.ndarray], np.ndarray], step: int = 16) -> np.ndarray:
    """``fn(x, y)`` (x, y normalised to [-1, 1]) on a coarse grid, resized to the page: for smooth fields."""
    h, w = shape
    gy, gx = max(2, h // step), max(2, w // step)
    y, x = np.mgrid[0:gy, 0:gx].astype(np.float32)
    value = fn((x + 0.5) / gx * 2 - 1, (y + 0.5) / gy * 2 - 1).astype(np.float32)
    return cv2.resize(value, (w, h), interpolation=cv2.INTER_LINEAR)


def _multiply(image: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``image × factor``, rounded and saturated to uint8 (one OpenCV pass; no float copy of the page)."""
    return cv2.multiply(image, factor, dtype=cv2.CV_8U)


def _uniform_bytes(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(rng.bytes(shape[0] * shape[1]), np.uint8).reshape(shape)


def _line_distance(shape: tuple[int, int], angle: float, offset: float, coarse: bool,
                   window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Signed distance (px) of each pixel to a line through the page whose normal is at ``angle``
    (radians), ``offset`` px from the page centre; ``window`` (x0, y0, x1, y1): only those pixels."""
    h, w = shape
    nx, ny = math.cos(angle), math.sin(angle)
    if coarse:
        return _coarse_field(shape, lambda x, y: (x * w / 2) * nx + (y * h / 2) * ny - offset)
    x0, y0, x1, y1 = window or (0, 0, w, h)
    ys = (np.arange(y0, y1, dtype=np.float32) - h / 2)[:, None] * ny
    xs = (np.arange(x0, x1, dtype=np.float32) - w / 2)[None, :] * nx
    return xs + ys - offset


# -- photometric ----------------------------------------------------------------------------------
@effect("photometric",
        ParamSpec("brightness", (0.5, 1.0), (0.9, 1.0), doc="paper grey level as a fraction of white"),
        ParamSpec("texture", (0.0, 0.3), (0.0, 0.04), doc="amplitude of the paper's slow mottling"),
        ParamSpec("grain", (0.0, 0.3), (0.0, 0.03), doc="amplitude of the fine fibre grain"))
def paper(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Paper colour and texture: the page times a grey level with slow mottling and fine grain."""
    h, w = image.shape
    # Both fields are summed on the grain's grid, then resized once: one full-page pass, not two.
    grid = (max(2, h // 6), max(2, w // 6))
    field = p["texture"] * smooth_noise(rng, grid, 12) + p["grain"] * rng.standard_normal(grid, dtype=np.float32)
    field = cv2.resize((1.0 + field) * p["brightness"], (w, h), interpolation=cv2.INTER_CUBIC)
    return _multiply(image, field)


@effect("photometric",
        ParamSpec("gradient", (0.0, 0.6), (0.0, 0.15), doc="darkening from one side to the other"),
        ParamSpec("vignette", (0.0, 0.6), (0.0, 0.15), doc="darkening towards the corners"))
def lighting(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Uneven lighting: a linear gradient in a random direction and a vignette."""
    angle = rng.uniform(0, 2 * math.pi)
    cx, cy = rng.uniform(-0.3, 0.3, 2)
    g, v = p["gradient"], p["vignette"]
    field = _coarse_field(image.shape, lambda x, y: 1 - g * (0.5 + 0.5 * (x * math.cos(angle) + y * math.sin(angle)) / math.sqrt(2))
                          - v * ((x - cx) ** 2 + (y - cy) ** 2) / 2)
    return _multiply(image, field)


@effect("photometric",
        ParamSpec("strength", (0.0, 0.9), (0.1, 0.4), doc="darkening inside the shadow"),
        ParamSpec("coverage", (0.0, 1.0), (0.1, 0.4), doc="fraction of the page's diagonal in shadow"),
        ParamSpec("softness", (0.001, 0.5), (0.02, 0.1), doc="width of the edge, fraction of the diagonal"))
def shadow(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged shadow over one side of the page (a hand or a phone between lamp and page)."""
    h, w = image.shape
    diagonal = math.hypot(h, w)
    angle = rng.uniform(0, 2 * math.pi)
    edge = diagonal / 2 - p["coverage"] * diagonal  # the shadow lies beyond this offset
    nx, ny, width = math.cos(angle), math.sin(angle), p["softness"] * diagonal
    field = _coarse_field(image.shape, lambda x, y: 1 - p["strength"] / (
        1 + np.exp(-((x * w / 2) * nx + (y * h / 2) * ny - edge) / width)))
    return _multiply(image, field)


@effect("photometric",
        ParamSpec("fade", (0.0, 0.9), (0.0, 0.25), doc="ink lightened towards the paper"),
        ParamSpec("morph", (-1.0, 1.0), (0.0, 0.0), doc="<0: ink eroded (thinner), >0: dilated (bolder); 1 = one pixel"),
        ParamSpec("bleed_px", (0.0, 4.0), (0.0, 0.8), doc="sigma of the ink's soft spread into the paper"))
def ink(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Ink bleed, fading, erosion and dilation."""
    out = image
    m = p["morph"]
    if m:
        # Ink is dark: a 3×3 max filter (cv2.dilate) thins it by a pixel, a min filter thickens it;
        # a fraction blends towards that, so a 1-px staff line fades rather than vanishes.
        moved = cv2.dilate(out, _CROSS) if m < 0 else cv2.erode(out, _CROSS)
        out = cv2.addWeighted(out, 1 - abs(m), moved, abs(m), 0)
    if p["bleed_px"] > 0:
        out = cv2.min(out, cv2.GaussianBlur(out, (0, 0), p["bleed_px"]))
    if p["fade"] > 0:
        # 255 - (255 - v)(1 - fade): ink moves towards white, paper stays.
        out = cv2.convertScaleAbs(out, alpha=1 - p["fade"], beta=255 * p["fade"])
    return out


@effect("photometric",
        ParamSpec("sigma_px", (0.0, 6.0), (0.5, 1.2), doc="Gaussian blur (defocus)"),
        ParamSpec("motion_px", (0.0, 30.0), (0.0, 0.0), doc="length of a straight motion blur at a random angle"))
def blur(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Defocus and motion blur."""
    angle = rng.uniform(0, math.pi)
    out = image
    if p["sigma_px"] > 0:
        out = cv2.GaussianBlur(out, (0, 0), p["sigma_px"])
    length = p["motion_px"]
    if length >= 1:
        size = int(math.ceil(length)) | 1
        kernel = np.zeros((size, size), np.float32)
        c = size // 2
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        out = cv2.filter2D(out, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)
    return out


@effect("photometric",
        ParamSpec("sigma", (0.0, 60.0), (2.0, 8.0), doc="standard deviation of the sensor noise, grey levels"),
        ParamSpec("speckle", (0.0, 0.05), (0.0, 0.0), doc="fraction of pixels turned black or white"))
def noise(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise (nearly Gaussian) and salt-and-pepper speckle."""
    out = image
    if p["sigma"] > 0:
        # The sum of two uniform bytes is nearly Gaussian (triangular, std 104.5) and ten times
        # cheaper to draw than normal deviates.
        pair = cv2.add(_uniform_bytes(rng, image.shape), _uniform_bytes(rng, image.shape), dtype=cv2.CV_16S)
        k = p["sigma"] / 104.5
        out = cv2.addWeighted(out, 1.0, pair, k, -255 * k, dtype=cv2.CV_8U)
    if p["speckle"] > 0:
        u = np.frombuffer(rng.bytes(image.size * 2), np.uint16).reshape(image.shape)
        cut = int(p["speckle"] * 65536 / 2)
        out = out.copy() if out is image else out
        out[u < cut] = 0
        out[u >= 65536 - cut] = 255
    return out


@effect("photometric", ParamSpec("quality", (1, 100), (40, 90), integer=True, doc="JPEG quality"))
def jpeg(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression (8×8 block artefacts, ringing)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(p["quality"])])
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


@effect("photometric", ParamSpec("scale", (0.1, 1.0), (0.5, 0.9), doc="resolution of the capture, fraction of the page's"))
def resample(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Lower resolution: down-sampled (area average) and up-sampled back (bilinear) to the page size."""
    h, w = image.shape
    small = cv2.resize(image, (max(1, round(w * p["scale"])), max(1, round(h * p["scale"]))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@effect("photometric", ParamSpec("threshold", (1, 254), (110, 170), integer=True, doc="grey level below which a pixel is ink"))
def binarize(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Binarisation (a black-and-white scan or fax): ink 0, paper 255."""
    return cv2.threshold(image, int(p["threshold"]) - 1, 255, cv2.THRESH_BINARY)[1]


@effect("photometric",
        ParamSpec("alpha", (0.0, 0.6), (0.05, 0.15), doc="how much of the other side shows through"),
        ParamSpec("blur_px", (0.0, 10.0), (1.0, 3.0), doc="sigma of the blur the paper gives it"),
        ParamSpec("offset_px", (-200, 200), (-30, 30), integer=True, doc="shift of the other side"))
def bleed_through(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Bleed-through: the other side of the sheet (this page mirrored and shifted), faint and blurred."""
    h, w = image.shape
    dx = int(p["offset_px"])
    dy = int(rng.integers(-abs(dx), abs(dx) + 1))
    back = np.full_like(image, 255)
    flipped = image[:, ::-1]
    back[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        flipped[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    if p["blur_px"] > 0:
        back = cv2.GaussianBlur(back, (0, 0), p["blur_px"])
    # 255 - alpha (255 - back): the far side, faint; ink on this side stays on top.
    return cv2.min(image, cv2.convertScaleAbs(back, alpha=p["alpha"], beta=255 * (1 - p["alpha"])))


@effect("photometric",
        ParamSpec("count", (0, 12), (0, 2), integer=True, doc="number of stains"),
        ParamSpec("strength", (0.0, 0.7), (0.05, 0.2), doc="darkening inside a stain"),
        ParamSpec("radius", (0.005, 0.4), (0.03, 0.12), doc="stain radius, fraction of the page width"))
def stains(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Stains: irregular blotches with a darker rim (a coffee ring), each drawn in its own window."""
    h, w = image.shape
    out = image.astype(np.float32)
    for _ in range(int(p["count"])):
        r = p["radius"] * w * rng.uniform(0.6, 1.4)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        x0, x1 = max(0, int(cx - 1.6 * r)), min(w, int(cx + 1.6 * r) + 1)
        y0, y1 = max(0, int(cy - 1.6 * r)), min(h, int(cy + 1.6 * r) + 1)
        wobble = smooth_noise(rng, (y1 - y0, x1 - x0), 6) * 0.15
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r + wobble  # < 1 inside
        body = 1 / (1 + np.exp((d - 1) * 12))
        rim = np.exp(-((d - 1) / 0.05) ** 2)
        out[y0:y1, x0:x1] *= 1 - p["strength"] * (0.6 * body + 0.8 * rim)
    return np.clip(out, 0, 255).round().astype(np.uint8)


@effect("photometric",
        ParamSpec("count", (0, 6), (0, 1), integer=True, doc="number of folds"),
        ParamSpec("strength", (0.0, 0.6), (0.05, 0.2), doc="darkening of the crease and its shaded side"))
def folds(image: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Folds: a thin dark crease across the page with one side shaded."""
    h, w = image.shape
    out = image.copy()
    reach = 240.0  # px beyond which a fold changes nothing (exp(-240/40) < 0.3 %)
    for _ in range(int(p["count"])):
        vertical = rng.random() < 0.5
        angle = (0.0 if vertical else math.pi / 2) + rng.normal(0, 0.05)
        offset = rng.uniform(-0.35, 0.35) * (w if vertical else h)
        # Only the band near the crease is computed at full resolution.
        near = np.abs(_line_distance(image.shape, angle, offset, coarse=True)) < reach + 32
        rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        if not rows.size:
            continue
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        d = _line_distance(image.shape, angle, offset, coarse=False, window=(x0, y0, x1, y1))
        shade = np.exp(-np.abs(d) / 40) * (d > 0) * 0.5 + np.exp(-(d / 1.5) ** 2)
        out[y0:y1, x0:x1] = _multiply(out[y0:y1, x0:x1], (1 - p["strength"] * shade).astype(np.float32))
    return out


# -- geometric ------------------------------------------------------------------------------------
def _about_centre(shape: tuple[int, int], linear: np.ndarray) -> np.ndarray:
    h, w = shape
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = c - linear @ c
    return m


@effect("geometric", ParamSpec("angle_deg", (-45.0, 45.0), (-1.0, 1.0), doc="rotation about the page centre, counter-clockwise on the page"))
def rotate(shape: tuple[int, int], p: Params, rng: np.random.Generator) -> Step:
    """Small rotation (a page laid crooked on the scanner)."""
    a = math.radians(p["angle_deg"])
    # y points down on the page, so a counter-clockwise turn as seen is [[c, s], [-s, c]].
    return Step(matrix=_about_centre(shape, np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])))


@effect("geometric", ParamSpec("shear_deg", (-10.0, 10.0), (-0.5, 0.5), doc="horizontal shear angle"))
def skew(shape: tuple[int, int], p: Params, rng: np.random.Generator) -> Step:
    """Skew: a horizontal shear about the page centre (a sheet dragged through a feeder)."""
    return Step(matrix=_about_centre(shape, np.array([[1.0, math.tan(math.radians(p["shear_deg"]))], [0.0, 1.0]])))


@effect("geometric",
        ParamSpec("jitter", (0.0, 0.2), (0.01, 0.05), doc="random move of each corner, fraction of the page size"),
        ParamSpec("margin", (0.0, 0.2), (0.0, 0.03), doc="how far the page lies inside the frame, fraction"),
        ParamSpec("background", (0, 255), (30, 110), integer=True, doc="grey level of the table around the page"))
def perspective(shape: tuple[int, int], p: Params, rng: np.random.Generator) -> Step:
    """Perspective: the page's corners moved as in a hand-held phone photo; the table shows round it."""
    h, w = shape
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    inward = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    size = np.float32([w, h])
    moved = src + inward * size * p["margin"] + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * size * p["jitter"]
    return Step(matrix=cv2.getPerspectiveTransform(src, moved.astype(np.float32)).astype(np.float64),
                background=float(p["background"]))


@effect("geometric",
        ParamSpec("amplitude_px", (0.0, 80.0), (2.0, 10.0), doc="largest displacement"),
        ParamSpec("wavelength", (0.2, 4.0), (0.6, 1.5), doc="wavelength of the bend, fraction of the page size"))
def curl(shape: tuple[int, int], p: Params, rng: np.random.Generator) -> Step:
    """Curl: a smooth non-linear warp (a page that does not lie flat), two sine bends of random phase."""
    h, w = shape
    a, lam = p["amplitude_px"], p["wavelength"]
    phase = rng.uniform(0, 2 * math.pi, 2)
    share = rng.uniform(0.3, 1.0)  # how much of the bend is vertical (lines bow) versus horizontal

    def field(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dy = a * share * np.sin(2 * math.pi * x / (lam * w) + phase[0])
        dx = a * (1 - share) * np.sin(2 * math.pi * y / (lam * h) + phase[1])
        return dx, dy

    return Step(field=field)
