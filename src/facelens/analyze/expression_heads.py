"""Expression heads trained on FER+: a softmax regression over the penultimate features of the CNN expression
models, fitted to FER+'s crowd-vote distributions (soft targets, FER+'s "probability" mode), 8 classes (FER2013's
seven and contempt).

A head is an :class:`ExpressionModel` like the CNNs: its crops are the tuple of its backbones' crops, its features
the concatenation of their features, ``classify`` the fitted regression. Fitted heads are data, not code:
``facelens analyze train`` (or ``python -m facelens.analyze.expression_heads``) makes them from FER+ train,
selects the regularisation on FER+ valid, and writes ``<name>.npz`` into the user cache
(``$FACELENS_CACHE_DIR/heads``, default ``~/.cache/facelens/heads``), where they are found first. The default head
also ships in ``facelens/data`` (a few hundred kB of float32 weights made by this project with that command), so
``facelens analyze`` works without FER+ on the machine.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from facelens.analyze.expression import (
    EXPRESSION_MODELS,
    EXPRESSION_SOURCES,
    ExpressionModel,
    get_expression_model,
    softmax,
)
from facelens.analyze.models import EXPRESSIONS8
from facelens.errors import FacelensError, ModelUnavailableError
from facelens.types import DetectedFace

log = logging.getLogger(__name__)

FORMAT = "facelens-expression-head-v1"
#: FER+ vote columns, in facelens class names.
FERPLUS_VOTES = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt", "unknown", "not_face")
#: Trained heads by name → the expression models whose features they read.
TRAINED_HEADS: dict[str, tuple[str, ...]] = {
    "ferplus_opencv_fer": ("opencv_fer",),
    "ferplus_mini_xception": ("mini_xception",),
    "ferplus_both": ("opencv_fer", "mini_xception"),
}
#: L2 strengths tried on FER+ valid (the penalty is ``l2 * |W|^2 / 2`` on standardised features).
L2_GRID = (1.0, 0.3, 0.1, 1e-2, 1e-3)


def heads_dir() -> Path:
    """Where ``facelens analyze train`` writes fitted heads (found before the shipped ones)."""
    value = os.environ.get("FACELENS_CACHE_DIR")
    base = Path(value).expanduser() if value else Path.home() / ".cache" / "facelens"
    return base / "heads"


# ----------------------------------------------------------------------------------------------------------
# the classifier


@dataclass
class SoftmaxRegression:
    """Multinomial logistic regression fitted to target distributions (rows of ``targets`` sum to 1) by L-BFGS,
    on standardised features. scikit-learn's LogisticRegression takes hard labels only."""

    l2: float = 1e-2
    max_iter: int = 300
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    weight: np.ndarray | None = None  # [D, K]
    bias: np.ndarray | None = None  # [K]

    def fit(self, X: np.ndarray, targets: np.ndarray, start: SoftmaxRegression | None = None) -> SoftmaxRegression:
        """``start``: a regression fitted on the same data with another ``l2`` (a warm start, fewer iterations)."""
        from scipy.optimize import minimize

        X = np.asarray(X, np.float64)
        T = np.asarray(targets, np.float32)
        self.mean, self.scale = X.mean(0), X.std(0) + 1e-6
        Z = ((X - self.mean) / self.scale).astype(np.float32)  # float32 products: half the time, same optimum
        n, d = Z.shape
        k = T.shape[1]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W, b = theta[: d * k].reshape(d, k).astype(np.float32), theta[d * k :].astype(np.float32)
            logits = Z @ W + b
            logits -= logits.max(1, keepdims=True)
            log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
            value = -float((T * log_p).sum(dtype=np.float64)) / n + 0.5 * self.l2 * float((W * W).sum(dtype=np.float64))
            residual = (np.exp(log_p) - T) / n
            grad = np.concatenate([(Z.T @ residual + self.l2 * W).ravel(), residual.sum(0)]).astype(np.float64)
            return value, grad

        theta = np.zeros(d * k + k)
        if start is not None and start.weight is not None and start.weight.shape == (d, k):
            theta = np.concatenate([start.weight.ravel(), start.bias]).astype(np.float64)
        from threadpoolctl import threadpool_limits

        # one BLAS thread: these products are small, and threads fighting for busy cores made a fit 45x slower
        # (measured: 711 faces x 2048 features, 31 s with OpenBLAS' default threads vs 0.7 s with one)
        with threadpool_limits(limits=1):
            found = minimize(loss, theta, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        self.weight = found.x[: d * k].reshape(d, k).astype(np.float32)
        self.bias = found.x[d * k :].astype(np.float32)
        self.mean, self.scale = self.mean.astype(np.float32), self.scale.astype(np.float32)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.weight is None:
            raise FacelensError("this expression head is not fitted")
        Z = (np.asarray(X, np.float32) - self.mean) / self.scale
        return softmax(Z @ self.weight + self.bias)


# ----------------------------------------------------------------------------------------------------------
# the head as an expression model


@dataclass
class TrainedExpressionHead(ExpressionModel):
    """A fitted head over ``backbones``' features. Load with :meth:`load`; fit with :func:`train_heads`."""

    name: str = "ferplus_both"
    backbones: tuple[str, ...] = ("opencv_fer", "mini_xception")
    labels: tuple[str, ...] = EXPRESSIONS8
    regression: SoftmaxRegression = field(default_factory=SoftmaxRegression)
    model_ids: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)  # how it was fitted and what it measured
    runtime: str = "onnxruntime"

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def model_id(self) -> str:  # type: ignore[override]
        return self.name

    def _models(self) -> list[ExpressionModel]:
        return [get_expression_model(b, self.runtime) for b in self.backbones]

    def crops(self, image: np.ndarray, detections: Sequence[DetectedFace], whole: bool = False) -> list[tuple]:
        per_model = [m.crops(image, detections, whole) for m in self._models()]
        return list(zip(*per_model))

    def features(self, crops: Sequence[tuple]) -> np.ndarray:
        models = self._models()
        return np.hstack([m.features([c[i] for c in crops]) for i, m in enumerate(models)]).astype(np.float32)

    def classify(self, features: np.ndarray) -> np.ndarray:
        return self.regression.predict_proba(features)

    # -- files ---------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """An ``.npz`` of arrays and a JSON description (no pickle: safe to load from anywhere)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "name": self.name, "backbones": list(self.backbones), "labels": list(self.labels),
                "l2": self.regression.l2, "model_ids": self.model_ids, "report": self.report}  # fmt: skip
        r = self.regression
        with open(path, "wb") as handle:  # np.savez would append .npz to a name without it
            np.savez_compressed(handle, meta=np.array(json.dumps(meta)), mean=r.mean, scale=r.scale,
                                weight=r.weight, bias=r.bias)  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | Path, runtime: str = "onnxruntime") -> TrainedExpressionHead:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k] for k in ("mean", "scale", "weight", "bias")}
        except (OSError, ValueError, KeyError) as exc:
            raise FacelensError(f"{path} is not a facelens expression head ({exc.__class__.__name__}: {exc})") from exc
        if meta.get("format") != FORMAT:
            raise FacelensError(f"{path} is not a facelens expression head (expected format {FORMAT})")
        regression = SoftmaxRegression(l2=meta["l2"], **arrays)
        return cls(name=meta["name"], backbones=tuple(meta["backbones"]), labels=tuple(meta["labels"]),
                   regression=regression, model_ids=meta["model_ids"], report=meta["report"], runtime=runtime)  # fmt: skip


def head_file(name: str) -> Path:
    """The fitted head ``name``: the user cache's (from ``facelens analyze train``) or the one shipped."""
    cached = heads_dir() / f"{name}.npz"
    if cached.is_file():
        return cached
    shipped = resources.files("facelens.data").joinpath(f"{name}.npz")
    if shipped.is_file():
        return Path(str(shipped))
    raise ModelUnavailableError(
        f"expression head {name!r} is not fitted: run `facelens analyze train --ferplus DIR` (FER+ train/valid "
        f"npz files) to make {cached}"
    )


def _trained(name: str) -> Any:
    def make(runtime: str) -> ExpressionModel:
        return TrainedExpressionHead.load(head_file(name), runtime)

    return make


def _version(name: str) -> Any:
    def version() -> str:
        try:
            path = head_file(name)
        except ModelUnavailableError:
            return "missing"
        return f"{path}:{path.stat().st_mtime_ns}"

    return version


for _name in TRAINED_HEADS:
    EXPRESSION_MODELS[_name] = _trained(_name)
    EXPRESSION_SOURCES[_name] = _version(_name)


# ----------------------------------------------------------------------------------------------------------
# FER+ and training


@dataclass(frozen=True)
class FerPlus:
    """One FER+ split: 48x48 grayscale images, soft targets over :data:`EXPRESSIONS8` and the majority label.

    Faces whose top vote is "unknown" or "not a face" are left out (FER+'s usual protocol)."""

    images: np.ndarray  # uint8 [N, 48, 48]
    targets: np.ndarray  # float32 [N, 8], rows sum to 1
    labels: np.ndarray  # str [N], majority over the 8 emotions

    def every(self, step: int) -> FerPlus:
        """Every ``step``-th face (a subset for quick fits on a busy machine)."""
        return self if step <= 1 else FerPlus(self.images[::step], self.targets[::step], self.labels[::step])

    @classmethod
    def load(cls, path: str | Path) -> FerPlus:
        path = Path(path)
        if not path.is_file():
            raise FacelensError(f"{path} not found (FER+ split as npz with 'images' and 'votes')")
        with np.load(path) as data:
            images, votes = data["images"], data["votes"].astype(np.float32)
        keep = votes.argmax(1) < 8
        emotions = votes[keep, :8]
        order = [FERPLUS_VOTES.index(c) for c in EXPRESSIONS8]
        targets = emotions[:, order] / emotions.sum(1, keepdims=True)
        labels = np.array(EXPRESSIONS8)[targets.argmax(1)]
        return cls(images[keep], targets.astype(np.float32), labels)


def whole_crops(images: np.ndarray, model: ExpressionModel) -> list[Any]:
    """Each face crop through the same path as ``--face-crops`` (landmarks on the crop, then the model's crop)."""
    import cv2

    from facelens.analyze.api import whole_detection

    out = []
    for gray in images:
        rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
        if model.needs_landmarks:
            face = whole_detection(rgb)
        else:
            h, w = gray.shape[:2]
            face = DetectedFace(np.array([0, 0, w, h], np.float32), 1.0, np.zeros((5, 2), np.float32), detector="crop")
        out.append(model.crops(rgb, [face], whole=True)[0])
    return out


def cached_features(split: Path, backbone: str, images: np.ndarray, cache: Path | None = None) -> np.ndarray:
    """``backbone`` features of every image of a split, computed once and kept in ``cache`` (default the heads
    folder), keyed by the split's file name, size and the model id."""
    model = get_expression_model(backbone)
    cache = cache or heads_dir() / "features"
    key = cache / f"{split.stem}-{len(images)}-{backbone}-{model.model_id}.npy"
    if key.is_file():
        return np.load(key)
    log.info("computing %s features of %d faces of %s", backbone, len(images), split.name)
    features = np.concatenate(
        [model.features(whole_crops(images[i : i + 256], model)) for i in range(0, len(images), 256)]
    ).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(key, features)
    return features


def accuracy(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], seven: bool = True) -> float:
    """Top-1 accuracy; ``seven`` leaves contempt faces out (the classes every model has)."""
    pred = np.array(classes)[np.asarray(probs).argmax(1)]
    keep = labels != "contempt" if seven else np.ones(len(labels), bool)
    return float((pred[keep] == labels[keep]).mean())


def train_heads(
    train_file: Path, valid_file: Path, names: Sequence[str] = tuple(TRAINED_HEADS), out_dir: Path | None = None,
    l2_grid: Sequence[float] = L2_GRID, every: int = 1,
) -> list[dict[str, Any]]:  # fmt: skip
    """Fit each head on FER+ train (every ``every``-th face) for every L2 strength, keep the one best on FER+ valid
    (7-class accuracy), save it as ``out_dir/<name>.npz`` (default the user cache); one report row per head."""
    out_dir = out_dir or heads_dir()
    train, valid = FerPlus.load(train_file).every(every), FerPlus.load(valid_file)
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows = []
    for name in names:
        if name not in TRAINED_HEADS:
            raise ValueError(f"unknown trained head {name!r}; choose from {', '.join(TRAINED_HEADS)}")
        backbones = TRAINED_HEADS[name]
        for b in backbones:
            if b not in feats:
                feats[b] = (cached_features(train_file, b, train.images, out_dir / "features"),
                            cached_features(valid_file, b, valid.images, out_dir / "features"))
        Xt = np.hstack([feats[b][0] for b in backbones])
        Xv = np.hstack([feats[b][1] for b in backbones])
        best: tuple[float, SoftmaxRegression, dict] | None = None
        tried = {}
        previous = None
        for l2 in sorted(l2_grid, reverse=True):  # strongest first; each fit starts from the previous one
            regression = previous = SoftmaxRegression(l2=l2).fit(Xt, train.targets, start=previous)
            probs = regression.predict_proba(Xv)
            acc7, acc8 = accuracy(valid.labels, probs, EXPRESSIONS8), accuracy(valid.labels, probs, EXPRESSIONS8, False)
            tried[str(l2)] = round(acc7, 4)
            log.info("%s l2=%g: FER+ valid accuracy %.4f (7 classes) %.4f (8)", name, l2, acc7, acc8)
            if best is None or acc7 > best[0]:
                best = (acc7, regression, {"valid_accuracy7": round(acc7, 4), "valid_accuracy8": round(acc8, 4)})
        assert best is not None
        report = {**best[2], "l2_tried": tried, "train_faces": len(train.labels), "train_every": every,
                  "valid_faces": len(valid.labels),
                  "train_file": train_file.name, "valid_file": valid_file.name}  # fmt: skip
        head = TrainedExpressionHead(
            name=name, backbones=backbones, regression=best[1], report=report,
            model_ids={b: get_expression_model(b).model_id for b in backbones},
        )  # fmt: skip
        path = head.save(out_dir / f"{name}.npz")
        with_model = {"head": name, "backbones": list(backbones), "l2": best[1].l2, **report, "path": str(path)}
        rows.append(with_model)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m facelens.analyze.expression_heads TRAIN.npz VALID.npz [OUT_DIR]``."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(args) < 2:
        raise SystemExit(main.__doc__)
    for row in train_heads(Path(args[0]), Path(args[1]), out_dir=Path(args[2]) if len(args) > 2 else None):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
