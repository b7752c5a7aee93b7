"""Model-free cues from the face region's spectrum and texture.

Recaptured faces (prints, phone/monitor replays) differ from live skin in ways a few measurements expose, as the
work on unified physical/digital attack detection combines spatial and frequency evidence:

* **spectrum** — a screen's pixel grid beating against the camera's sensor grid leaves *moiré*: narrow peaks in the
  mid/high band of the 2-D power spectrum that stand above the smooth 1/f fall-off of natural images
  (``moire_peak``); recapture also low-passes and re-sharpens the image, changing the share of energy in high
  frequencies (``hf_ratio``) and the slope of the radial fall-off (``spectral_slope``).
* **texture** — printing and re-imaging flatten micro-texture: focus (``log_laplacian_var``), the entropy of
  uniform LBP codes (``lbp_entropy``), and the colour gamut of the recapture medium (``saturation_mean``/``_std``).

Each image gives a fixed vector of :data:`FEATURES`. How much each cue counts is not guessed: the weights are fitted
on labelled live/spoof folders (:mod:`facelens.liveness.fusion`, ``facelens liveness fit``).
"""

from __future__ import annotations

import cv2
import numpy as np

FEATURES = (
    "hf_ratio",
    "moire_peak",
    "spectral_slope",
    "log_laplacian_var",
    "lbp_entropy",
    "saturation_mean",
    "saturation_std",
)

#: Side of the square grey patch the spectrum is measured on (a power of two keeps the FFT cheap).
PATCH = 128


def face_patch(image: np.ndarray, box: np.ndarray, size: int = PATCH) -> np.ndarray:
    """The face box (clipped to the image) resized to ``size``×``size``, RGB uint8."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
    x2, y2 = max(min(x2, w), x1 + 1), max(min(y2, h), y1 + 1)
    crop = image[y1:y2, x1:x2]
    interp = cv2.INTER_AREA if min(crop.shape[:2]) >= size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def _radius_grid(n: int) -> np.ndarray:
    f = np.fft.fftshift(np.fft.fftfreq(n))
    return np.sqrt(f[None, :] ** 2 + f[:, None] ** 2) / 0.5  # 1.0 = Nyquist


_RADIUS = _radius_grid(PATCH)
_WINDOW = np.outer(np.hanning(PATCH), np.hanning(PATCH))


def spectrum_features(gray: np.ndarray) -> dict[str, float]:
    """High-frequency share, moiré peak height above the radial trend, and log-log fall-off slope."""
    g = gray.astype(np.float64)
    g = (g - g.mean()) * _WINDOW
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2 + 1e-8
    r = _RADIUS
    valid = (r > 0.02) & (r <= 1.0)
    hf_ratio = float(power[(r > 0.5) & valid].sum() / power[valid].sum())
    logp = np.log(power)
    bins = np.minimum((r * 32).astype(int), 32)
    radial = np.array([np.median(logp[bins == b]) if np.any(bins == b) else 0.0 for b in range(33)])
    residual = logp - radial[bins]
    band = (r > 0.3) & (r <= 0.95)
    moire_peak = float(np.percentile(residual[band], 99.9) - np.median(residual[band]))
    fit = valid & (r > 0.05)
    slope = float(np.polyfit(np.log(r[fit]), logp[fit], 1)[0])
    return {"hf_ratio": hf_ratio, "moire_peak": moire_peak, "spectral_slope": slope}


def _lbp_entropy(gray: np.ndarray) -> float:
    """Entropy of the uniform LBP(8,1) code histogram (59 bins: 58 uniform patterns + one for the rest)."""
    g = gray.astype(np.int16)
    c = g[1:-1, 1:-1]
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    bits = [(g[1 + dy : g.shape[0] - 1 + dy, 1 + dx : g.shape[1] - 1 + dx] >= c).astype(np.uint8) for dy, dx in offsets]
    code = np.zeros_like(c, dtype=np.int32)
    transitions = np.zeros_like(c, dtype=np.int32)
    for i, b in enumerate(bits):
        code |= b.astype(np.int32) << i
        transitions += b != bits[(i + 1) % 8]
    code = np.where(transitions <= 2, code, 256)
    hist = np.bincount(code.ravel(), minlength=257).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def texture_features(rgb_patch: np.ndarray) -> dict[str, float]:
    gray = cv2.cvtColor(rgb_patch, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(gray, cv2.CV_64F)
    sat = cv2.cvtColor(rgb_patch, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float64) / 255.0
    return {
        "log_laplacian_var": float(np.log(lap.var() + 1e-6)),
        "lbp_entropy": _lbp_entropy(gray),
        "saturation_mean": float(sat.mean()),
        "saturation_std": float(sat.std()),
    }


def frequency_features(image: np.ndarray, box: np.ndarray) -> dict[str, float]:
    """Every cue in :data:`FEATURES` for the face in ``box`` of an RGB uint8 image."""
    patch = face_patch(image, box)
    out = spectrum_features(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY))
    out.update(texture_features(patch))
    return {k: out[k] for k in FEATURES}


def feature_matrix(image: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
    """[n, len(FEATURES)] float64 for several faces of one image."""
    if not boxes:
        return np.zeros((0, len(FEATURES)))
    return np.array([[f[k] for k in FEATURES] for f in (frequency_features(image, b) for b in boxes)])
