"""Expression evaluation on labelled faces: accuracy, macro-F1, per-class recall and the confusion matrix.

Labelled data comes as a folder per class (``DIR/happy/*.jpg``) or a CSV of ``path,label`` rows; label names
are normalised to facelens' (``anger`` → ``angry``, ``sadness`` → ``sad``, ``happiness`` → ``happy``...). A class
the model cannot answer (contempt for a 7-class model) still counts: its faces are errors, its recall 0. A face
the detector misses counts as an error too (predicted ``None``), so the figures are what a user gets.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import FacelensError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
ALIASES = {
    "anger": "angry", "sadness": "sad", "happiness": "happy", "surprised": "surprise", "fearful": "fear",
    "disgusted": "disgust", "contemptuous": "contempt", "neutrality": "neutral",
}  # fmt: skip


def canonical(label: str) -> str:
    label = label.strip().lower()
    return ALIASES.get(label, label)


def labelled_faces(source: str | Path) -> list[tuple[Path, str]]:
    """(image, label) pairs from a folder of class folders or a CSV (``path,label``; a header row is skipped,
    relative paths are relative to the CSV's folder)."""
    source = Path(source)
    if source.is_dir():
        items = [
            (path, canonical(folder.name))
            for folder in sorted(p for p in source.iterdir() if p.is_dir())
            for path in sorted(folder.rglob("*"))
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
    elif source.is_file() and source.suffix.lower() == ".csv":
        items = []
        with open(source, newline="") as handle:
            for row in csv.reader(handle):
                if len(row) < 2 or not row[0].strip() or row[0].strip().lower() in ("path", "image", "file"):
                    continue
                path = Path(row[0].strip())
                items.append((path if path.is_absolute() else source.parent / path, canonical(row[1])))
    else:
        raise FacelensError(f"{source}: expected a folder with one sub-folder of images per class, or a CSV path,label")
    if not items:
        raise FacelensError(f"{source} holds no labelled images")
    return items


@dataclass
class ExpressionReport:
    """The measures of one model on one labelled set. ``confusion[i][j]``: faces of ``classes[i]`` predicted as
    ``predicted_classes[j]`` (the model's classes, plus ``none`` when a face was missed)."""

    model: str
    n: int
    accuracy: float
    macro_f1: float
    recall: dict[str, float]
    precision: dict[str, float]
    classes: list[str]
    predicted_classes: list[str]
    confusion: list[list[int]]
    missed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "n": self.n, "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
            "recall": {k: round(v, 4) for k, v in self.recall.items()},
            "precision": {k: round(v, 4) for k, v in self.precision.items()},
            "classes": self.classes, "predicted_classes": self.predicted_classes, "confusion": self.confusion,
            "missed": self.missed, **self.extra,
        }  # fmt: skip


def expression_report(
    truth: Sequence[str], predicted: Sequence[str | None], model: str = "", model_classes: Sequence[str] = ()
) -> ExpressionReport:
    """Accuracy, macro-F1 (over the true classes), per-class recall and precision, and the confusion matrix."""
    truth = [canonical(t) for t in truth]
    if len(truth) != len(predicted) or not truth:
        raise ValueError("expression_report needs one prediction per labelled face (and at least one face)")
    classes = sorted(set(truth))
    shown = list(dict.fromkeys([*model_classes, *sorted({p for p in predicted if p is not None})]))
    if any(p is None for p in predicted):
        shown.append("none")
    col = {c: j for j, c in enumerate(shown)}
    confusion = np.zeros((len(classes), len(shown)), np.int64)
    for t, p in zip(truth, predicted):
        confusion[classes.index(t), col["none" if p is None else p]] += 1
    right = np.array([confusion[i, col[c]] if c in col else 0 for i, c in enumerate(classes)])
    support = confusion.sum(1)
    predicted_as = np.array([confusion[:, col[c]].sum() if c in col else 0 for c in classes])
    recall = right / np.maximum(support, 1)
    precision = np.where(predicted_as > 0, right / np.maximum(predicted_as, 1), 0.0)
    f1 = np.where(recall + precision > 0, 2 * recall * precision / np.maximum(recall + precision, 1e-12), 0.0)
    return ExpressionReport(
        model=model, n=len(truth), accuracy=float(right.sum() / len(truth)), macro_f1=float(f1.mean()),
        recall=dict(zip(classes, map(float, recall))), precision=dict(zip(classes, map(float, precision))),
        classes=classes, predicted_classes=shown, confusion=confusion.tolist(),
        missed=int(sum(p is None for p in predicted)),
    )  # fmt: skip


def confusion_png(report: ExpressionReport, path: str | Path) -> Path:
    """The confusion matrix, row-normalised (recall on the diagonal), with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(report.confusion, np.float64)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(report.predicted_classes), 1.0 + 0.7 * len(report.classes)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(report.predicted_classes)), report.predicted_classes, rotation=45, ha="right")
    ax.set_yticks(range(len(report.classes)), report.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                        color="white" if rates[i, j] > 0.5 else "black", fontsize=8)  # fmt: skip
    ax.set_title(f"{report.model}: accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f} (n={report.n})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def predict_expressions(
    paths: Sequence[Path], model: str | None = None, face_crops: bool = False, detector: str | None = None,
    workers: int | None = None, progress: Any = None,
) -> list[str | None]:  # fmt: skip
    """The expression label of the largest face of each image (None where no face was found or the image failed)."""
    from facelens.detect import DEFAULT_DETECTOR
    from facelens.engine import FaceAnalyzer

    engine = FaceAnalyzer(detector=detector or DEFAULT_DETECTOR, tasks=("analyze",), heads=("expression",),
                          expression_model=model, face_crops=face_crops, select="largest", workers=workers)  # fmt: skip
    out: list[str | None] = []
    for result in engine.run(list(paths), progress=progress):
        errors = result.faces.errors
        failed = [e["expression"] for e in (errors if errors is not None else []) if e and "expression" in e]
        if failed:  # the model itself is unusable (missing file, bad head): no figure would mean anything
            raise FacelensError(failed[0])
        labels = result.faces.expression_label if result.error is None else None
        out.append(str(labels[0]) if labels is not None and len(labels) else None)
    return out
