"""ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) for building distorted image sets.

19 corruptions at severities 1-5: the 15 "common" ones URIE trains on (`SEEN`) and the 4
"extra" ones it holds out (`UNSEEN`). Parameters and formulas are those of the reference
implementation as packaged by `imagecorruptions` 1.1.2 (itself from hendrycks/robustness). That
package cannot be used as is here: it imports `pkg_resources` (setuptools < 81 only), it
requires the GUI build of OpenCV (which clashes with the headless one FiftyOne needs), and three
of its corruptions fail on NumPy 2 / scikit-image >= 0.19 (`glass_blur` and `gaussian_blur` pass
the removed `multichannel=True`, `fog` uses the removed `np.float_`). This module is the same
arithmetic on today's APIs, with two differences that make it reproducible:

- randomness comes from one explicit `numpy.random.RandomState` per call (seeded by the caller)
  instead of NumPy's global state. The draws happen in the reference order, so a seed gives the
  reference output of `np.random.seed(seed); imagecorruptions.corrupt(...)`: checked bit for
  bit for 18 of the 19 corruptions at every severity (the three broken ones with only the two
  fixes below shimmed into the reference); tests/data/test_corruptions.py keeps a summary of
  the reference outputs. `impulse_noise` is the exception: scikit-image >= 0.19 ignores NumPy's
  global seed, so the reference is not deterministic at all; here it is seeded from the same
  RandomState and checked by the fraction of pixels it hits.
- the three broken corruptions use `channel_axis=-1` (the documented replacement for
  `multichannel=True`, same arithmetic) and float64 (what `np.float_` was).

`motion_blur` and `snow` use the package's OpenCV-free motion-blur kernel; the original
ImageNet-C (and URIE's code) used ImageMagick through Wand for these two, which differs slightly.
That deviation is recorded on the cub200-c card.

Input: uint8 RGB `H x W x 3` (grey `H x W` or `H x W x 1` is expanded to RGB, as the reference
does), at least 32 px each side. Output: uint8 of the same `H x W x 3` shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from io import BytesIO
from pathlib import Path

import numpy as np

SEEN: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
UNSEEN: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL: tuple[str, ...] = SEEN + UNSEEN
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
MIN_SIDE = 32

_TEXTURES = Path(__file__).with_name("corruption_textures")
_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


# ----------------------------------------------------------------------------- helpers


def _gaussian(x: np.ndarray, sigma, **kwargs) -> np.ndarray:
    from skimage.filters import gaussian

    return gaussian(x, sigma=sigma, **kwargs)


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    import cv2

    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        grid, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)  # anti-aliased disk


def _plasma_fractal(rng: np.random.RandomState, mapsize: int, wibbledecay: float) -> np.ndarray:
    """Diamond-square height map in [0, 1] (square, side a power of two)."""
    assert mapsize & (mapsize - 1) == 0
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        # squares: each square's centre is the mean of its corners plus noise
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        square = corners + np.roll(corners, shift=-1, axis=0)
        square += np.roll(square, shift=-1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(square)
        # diamonds: each edge midpoint is the mean of its neighbours plus noise
        dr = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ul = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        lt = dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1)
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(lt)
        tt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0)
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tt)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    from scipy.ndimage import zoom

    ch0 = int(np.ceil(img.shape[0] / float(zoom_factor)))
    top0 = (img.shape[0] - ch0) // 2
    ch1 = int(np.ceil(img.shape[1] / float(zoom_factor)))
    top1 = (img.shape[1] - ch1) // 2
    return zoom(img[top0:top0 + ch0, top1:top1 + ch1], (zoom_factor, zoom_factor, 1), order=1)


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate with edge replication (no wrap-around)."""
    if dx < 0:
        shifted = np.roll(image, shift=image.shape[1] + dx, axis=1)
        shifted[:, dx:] = shifted[:, dx - 1:dx]
    elif dx > 0:
        shifted = np.roll(image, shift=dx, axis=1)
        shifted[:, :dx] = shifted[:, dx:dx + 1]
    else:
        shifted = image
    if dy < 0:
        shifted = np.roll(shifted, shift=image.shape[0] + dy, axis=0)
        shifted[dy:, :] = shifted[dy - 1:dy, :]
    elif dy > 0:
        shifted = np.roll(shifted, shift=dy, axis=0)
        shifted[:dy, :] = shifted[dy:dy + 1, :]
    return shifted


def _motion_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """Sum of shifted copies along `angle`, weighted by a one-sided Gaussian (ImageMagick-like)."""
    width = radius * 2 + 1
    kernel = np.exp(-np.arange(width) ** 2 / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    kernel = kernel / np.sum(kernel)
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    blurred = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if abs(dy) >= x.shape[0] or abs(dx) >= x.shape[1]:
            break  # the motion left the image
        blurred = blurred + kernel[i] * _shift(x, dx, dy)
    return blurred


@cache
def _frost_texture(index: int) -> np.ndarray:
    import cv2

    path = _TEXTURES / _FROST_FILES[index]
    texture = cv2.imread(str(path))  # BGR, as the reference reads it
    if texture is None:
        raise FileNotFoundError(f"{path}: frost texture missing (reinstall reprolab)")
    texture.setflags(write=False)
    return texture


def _next_power_of_2(x: int) -> int:
    return 1 if x == 0 else 2 ** (x - 1).bit_length()


# ----------------------------------------------------------------------------- corruptions
# Each takes a uint8 RGB array and the RandomState, returns floats in [0, 255] (or uint8).


def gaussian_noise(x, severity, rng):
    c = [0.08, 0.12, 0.18, 0.26, 0.38][severity - 1]
    x = x / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, severity, rng):
    c = [60, 25, 12, 5, 3][severity - 1]
    x = x / 255.0
    return np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255


def impulse_noise(x, severity, rng):
    from skimage.util import random_noise

    c = [0.03, 0.06, 0.09, 0.17, 0.27][severity - 1]
    noise_rng = np.random.default_rng(rng.randint(2**31))
    x = random_noise(x / 255.0, mode="s&p", rng=noise_rng, amount=c)
    return np.clip(x, 0, 1) * 255


def speckle_noise(x, severity, rng):
    c = [0.15, 0.2, 0.35, 0.45, 0.6][severity - 1]
    x = x / 255.0
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


def gaussian_blur(x, severity, rng):
    c = [1, 2, 3, 4, 6][severity - 1]
    x = _gaussian(x / 255.0, sigma=c, channel_axis=-1)
    return np.clip(x, 0, 1) * 255


def glass_blur(x, severity, rng):
    sigma, max_delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2),
                                    (1.5, 4, 2)][severity - 1]
    x = np.uint8(_gaussian(x / 255.0, sigma=sigma, channel_axis=-1) * 255)
    height, width = x.shape[:2]
    rows = range(height - max_delta, max_delta, -1)
    cols = range(width - max_delta, max_delta, -1)
    for _ in range(iterations):
        # locally shuffle pixels; the swaps are sequential, so only the draws are batched
        # (same stream as the reference's one randint(size=2) per pixel)
        deltas = rng.randint(-max_delta, max_delta, size=(len(rows) * len(cols), 2))
        k = 0
        for h in rows:
            for w in cols:
                dx, dy = deltas[k]
                k += 1
                # the reference's tuple "swap" of two numpy views copies one way only:
                # x[h, w] takes x[hp, wp]'s value and x[hp, wp] keeps it; kept as published
                x[h, w] = x[h + dy, w + dx]
    return np.clip(_gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255


def defocus_blur(x, severity, rng):
    import cv2

    radius, alias = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][severity - 1]
    x = x / 255.0
    kernel = _disk(radius=radius, alias_blur=alias)
    channels = np.array([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)])
    return np.clip(channels.transpose((1, 2, 0)), 0, 1) * 255


def motion_blur(x, severity, rng):
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    angle = rng.uniform(-45, 45)
    return np.clip(_motion_blur(x, radius=radius, sigma=sigma, angle=angle), 0, 255)


def zoom_blur(x, severity, rng):
    zooms = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
             np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)][severity - 1]
    x = (x / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for zoom_factor in zooms:
        layer = _clipped_zoom(x, zoom_factor)[:x.shape[0], :x.shape[1], :]
        out[:layer.shape[0], :layer.shape[1]] += layer
    return np.clip((x + out) / (len(zooms) + 1), 0, 1) * 255


def fog(x, severity, rng):
    strength, decay = [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)][severity - 1]
    height, width = x.shape[:2]
    map_size = _next_power_of_2(int(max(x.shape)))
    x = x / 255.0
    max_val = x.max()
    x = x + strength * _plasma_fractal(rng, map_size, decay)[:height, :width][..., np.newaxis]
    return np.clip(x * max_val / (max_val + strength), 0, 1) * 255


def frost(x, severity, rng):
    import cv2

    weight, frost_weight = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)][severity - 1]
    texture = _frost_texture(rng.randint(5))
    th, tw = texture.shape[:2]
    h, w = x.shape[:2]
    # scale the texture up (by 10% more than needed) until it covers the image
    scale = max(1.0, h / th, w / tw) * 1.1
    texture = cv2.resize(texture, dsize=(int(np.ceil(tw * scale)), int(np.ceil(th * scale))),
                         interpolation=cv2.INTER_CUBIC)
    top = rng.randint(0, texture.shape[0] - h)
    left = rng.randint(0, texture.shape[1] - w)
    texture = texture[top:top + h, left:left + w][..., [2, 1, 0]]  # BGR -> RGB
    return np.clip(weight * x + frost_weight * texture, 0, 255)


def snow(x, severity, rng):
    import cv2

    c = [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
         (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
         (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)][severity - 1]
    x = np.asarray(x, dtype=np.float32) / 255.0
    layer = rng.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = _clipped_zoom(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer = np.clip(layer.squeeze(), 0, 1)
    layer = _motion_blur(layer, radius=c[4], sigma=c[5], angle=rng.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.0)[..., np.newaxis]
    layer = layer[:x.shape[0], :x.shape[1], :]
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(x.shape[0], x.shape[1], 1)
    x = c[6] * x + (1 - c[6]) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def spatter(x, severity, rng):
    import cv2

    c = [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
         (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)][severity - 1]
    rgb = x
    x = np.asarray(x, dtype=np.float32) / 255.0
    liquid = rng.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    liquid = _gaussian(liquid, sigma=c[2])
    liquid[liquid < c[3]] = 0
    if c[5] == 0:  # water drops, pale turquoise
        liquid = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
        m /= np.max(m, axis=(0, 1))
        m *= c[4]
        ones = np.ones_like(m[..., :1])
        color = np.concatenate((175 / 255.0 * ones, 238 / 255.0 * ones, 238 / 255.0 * ones), axis=2)
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
        return cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255
    # mud, brown
    m = np.where(liquid > c[3], 1, 0)
    m = _gaussian(m.astype(np.float32), sigma=c[4])
    m[m < 0.8] = 0
    ones = np.ones_like(rgb[..., :1], dtype=np.float64)
    color = np.concatenate((63 / 255.0 * ones, 42 / 255.0 * ones, 20 / 255.0 * ones), axis=2)
    color *= m[..., np.newaxis]
    x *= 1 - m[..., np.newaxis]
    return np.clip(x + color, 0, 1) * 255


def contrast(x, severity, rng):
    c = [0.4, 0.3, 0.2, 0.1, 0.05][severity - 1]
    x = x / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(x, severity, rng):
    from skimage.color import hsv2rgb, rgb2hsv

    c = [0.1, 0.2, 0.3, 0.4, 0.5][severity - 1]
    x = rgb2hsv(x / 255.0)
    x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
    return np.clip(hsv2rgb(x), 0, 1) * 255


def saturate(x, severity, rng):
    from skimage.color import hsv2rgb, rgb2hsv

    scale, offset = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][severity - 1]
    x = rgb2hsv(x / 255.0)
    x[:, :, 1] = np.clip(x[:, :, 1] * scale + offset, 0, 1)
    return np.clip(hsv2rgb(x), 0, 1) * 255


def jpeg_compression(x, severity, rng):
    from PIL import Image

    quality = [25, 18, 15, 10, 7][severity - 1]
    buffer = BytesIO()
    Image.fromarray(x).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def pixelate(x, severity, rng):
    from PIL import Image

    c = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
    h, w = x.shape[:2]
    image = Image.fromarray(x).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(image.resize((w, h), Image.NEAREST))


def elastic_transform(x, severity, rng):
    from scipy.ndimage import map_coordinates

    image = np.asarray(x, dtype=np.float32) / 255.0
    shape = image.shape
    sigma = np.array(shape[:2]) * 0.01
    alpha = [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12][severity - 1]
    max_d = shape[0] * 0.005
    dx = (_gaussian(rng.uniform(-max_d, max_d, size=shape[:2]), sigma, mode="reflect",
                    truncate=3) * alpha).astype(np.float32)
    dy = (_gaussian(rng.uniform(-max_d, max_d, size=shape[:2]), sigma, mode="reflect",
                    truncate=3) * alpha).astype(np.float32)
    dx, dy = dx[..., np.newaxis], dy[..., np.newaxis]
    xx, yy, zz = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    indices = (np.reshape(yy + dy, (-1, 1)), np.reshape(xx + dx, (-1, 1)), np.reshape(zz, (-1, 1)))
    warped = map_coordinates(image, indices, order=1, mode="reflect").reshape(shape)
    return np.clip(warped, 0, 1) * 255


CORRUPTIONS: dict[str, Callable] = {name: globals()[name] for name in ALL}


# ----------------------------------------------------------------------------- API


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy array, got "
                        f"{type(image).__name__} {getattr(image, 'dtype', '')}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image (or grey H x W), got shape {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} px; the corruptions need at "
                         f"least {MIN_SIDE} px per side")
    return image


def corrupt(image: np.ndarray, name: str, severity: int,
            rng: np.random.RandomState | int | None = None) -> np.ndarray:
    """`image` with corruption `name` at `severity` (1-5): uint8 RGB in, uint8 RGB out.

    `rng` (a seed or a RandomState) makes the result deterministic; None draws a fresh seed.
    """
    if name not in CORRUPTIONS:
        from reprolab.names import unknown_name

        raise unknown_name("corruption", name, ALL)
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1-5, got {severity!r}")
    if not isinstance(rng, np.random.RandomState):
        rng = np.random.RandomState(rng)
    image = _as_rgb(image)
    out = CORRUPTIONS[name](image.copy(), severity, rng)
    return np.uint8(out)  # truncation, as the reference does


def draw(rng: np.random.RandomState, names: tuple[str, ...] = SEEN,
         clean: bool = False) -> tuple[str | None, int]:
    """One (corruption, severity) draw as URIE samples them: uniform over `names` (plus "clean",
    returned as None, when `clean`), severity uniform in 1-5."""
    options = len(names) + int(clean)
    index = int(rng.randint(options))
    severity = int(rng.randint(1, 6))
    return (names[index] if index < len(names) else None), severity


__all__ = ["ALL", "CORRUPTIONS", "SEEN", "SEVERITIES", "UNSEEN", "corrupt", "draw"]
