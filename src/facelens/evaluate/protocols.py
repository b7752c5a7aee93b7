"""Evaluation protocols: which image pairs to compare (LFW ``pairs.txt`` / ``pairsDevTest.txt`` or a CSV
``a,b,same``) and how to split a folder of people into a gallery, mated probes and non-mated (impostor) probes."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelens.errors import FacelensError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}



def centred_face(boxes, image_shape) -> int:
    """Index of the box whose centre is nearest the image centre: LFW's labelled face. Every LFW image was cut
    around the named person's detection and centred on it (lfw_README.txt), so where an image shows several people
    the labelled one is the centred face, not always the largest (3 of the 1,926 staged images with HOG, 2 of them
    in DevTest pairs)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        raise ValueError("no faces to choose from")
    centre = np.array([image_shape[1], image_shape[0]], np.float64) / 2
    return int(np.argmin(np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1)))

@dataclass(frozen=True)
class Pair:
    """Two images and whether they show the same person; ``fold`` is the protocol's fold (None without folds)."""

    a: str
    b: str
    same: bool
    fold: int | None = None


@dataclass(frozen=True)
class PairSet:
    pairs: tuple[Pair, ...]
    n_folds: int  # 0 when the file defines no folds
    source: str

    @property
    def labels(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs], dtype=bool)

    @property
    def folds(self) -> np.ndarray | None:
        return np.array([p.fold for p in self.pairs]) if self.n_folds else None

    def images(self) -> list[str]:
        """Every distinct image path, in first-use order."""
        seen: dict[str, None] = {}
        for p in self.pairs:
            seen.setdefault(p.a)
            seen.setdefault(p.b)
        return list(seen)

    def subset(self, n: int, seed: int = 0) -> PairSet:
        """``n`` pairs, half genuine and half impostor where possible, drawn with ``seed`` (folds dropped)."""
        rng = np.random.default_rng(seed)
        labels = self.labels
        gen, imp = np.flatnonzero(labels), np.flatnonzero(~labels)
        k_gen = min(len(gen), n // 2)
        k_imp = min(len(imp), n - k_gen)
        idx = np.sort(np.concatenate([rng.choice(gen, k_gen, replace=False), rng.choice(imp, k_imp, replace=False)]))
        pairs = tuple(Pair(self.pairs[i].a, self.pairs[i].b, self.pairs[i].same) for i in idx)
        return PairSet(pairs, 0, f"{self.source} (subset of {len(pairs)}, seed {seed})")


def _lfw_path(root: Path, name: str, number: str) -> str:
    filename = f"{name}_{int(number):04d}.jpg"
    for base in (root, root / "lfw_deepfunneled", root / "lfw"):
        candidate = base / name / filename
        if candidate.exists():
            return str(candidate)
    return str(root / name / filename)  # missing: reported later as a failure to enrol


def read_lfw_pairs(path: str | Path, root: str | Path) -> PairSet:
    """LFW pairs format. ``pairsDevTest.txt``: first line ``N``, then N matched lines ``name i j`` and N
    mismatched lines ``name1 i name2 j``. ``pairs.txt`` (View 2): first line ``folds N``, then per fold N
    matched followed by N mismatched lines."""
    path, root = Path(path), Path(root)
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or not all(t.isdigit() for t in lines[0]):
        raise FacelensError(f"{path}: not an LFW pairs file (first line must be 'N' or 'folds N')")
    header = [int(t) for t in lines[0]]
    n_folds, per_set = (header[0], header[1]) if len(header) == 2 else (1, header[0])
    body = lines[1:]
    if len(body) != n_folds * 2 * per_set:
        raise FacelensError(f"{path}: expected {n_folds * 2 * per_set} pair lines from the header, found {len(body)}")
    pairs = []
    for i, tokens in enumerate(body):
        fold = i // (2 * per_set) if len(header) == 2 else None
        if len(tokens) == 3:
            pairs.append(Pair(_lfw_path(root, tokens[0], tokens[1]), _lfw_path(root, tokens[0], tokens[2]), True, fold))
        elif len(tokens) == 4:
            pairs.append(Pair(_lfw_path(root, tokens[0], tokens[1]), _lfw_path(root, tokens[2], tokens[3]), False, fold))
        else:
            raise FacelensError(f"{path}:{i + 2}: expected 'name i j' or 'name1 i name2 j', got {' '.join(tokens)!r}")
    return PairSet(tuple(pairs), n_folds if len(header) == 2 else 0, str(path))


_TRUE = {"1", "true", "yes", "same", "y", "t"}
_FALSE = {"0", "false", "no", "different", "n", "f"}


def read_csv_pairs(path: str | Path, root: str | Path | None = None) -> PairSet:
    """CSV with a header: image columns ``a,b`` (or ``file_x,file_y``), a label column ``same`` (or
    ``same_person``, ``label``, ``decision``) holding 1/0, yes/no or true/false, and an optional ``fold``."""
    path = Path(path)
    root = Path(root) if root else path.parent
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = {c.lower().strip(): c for c in reader.fieldnames or []}
        col_a = next((cols[c] for c in ("a", "file_x", "img1", "image_a") if c in cols), None)
        col_b = next((cols[c] for c in ("b", "file_y", "img2", "image_b") if c in cols), None)
        col_s = next((cols[c] for c in ("same", "same_person", "label", "decision") if c in cols), None)
        if not (col_a and col_b and col_s):
            raise FacelensError(f"{path}: need columns a,b,same (found {', '.join(cols) or 'none'})")
        col_f = cols.get("fold")
        pairs = []
        for line, row in enumerate(reader, start=2):
            value = str(row[col_s]).strip().lower()
            if value not in _TRUE | _FALSE:
                raise FacelensError(f"{path}:{line}: label {row[col_s]!r} is not 1/0, yes/no or true/false")
            fold = int(row[col_f]) if col_f and row[col_f] not in (None, "") else None
            pairs.append(Pair(str(root / row[col_a]), str(root / row[col_b]), value in _TRUE, fold))
    folds = {p.fold for p in pairs}
    n_folds = len(folds) if None not in folds and len(folds) > 1 else 0
    if not n_folds:
        pairs = [Pair(p.a, p.b, p.same) for p in pairs]
    return PairSet(tuple(pairs), n_folds, str(path))


def read_pairs(path: str | Path, root: str | Path | None = None) -> PairSet:
    """Pairs from an LFW pairs file or a CSV (chosen by content); image paths are resolved against ``root``
    (default: the file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise FacelensError(f"pairs file {path} not found")
    first = path.read_text().lstrip().split("\n", 1)[0]
    if first.split() and all(t.isdigit() for t in first.split()):
        return read_lfw_pairs(path, root or path.parent)
    return read_csv_pairs(path, root)


@dataclass(frozen=True)
class IdentificationSplit:
    """Closed gallery plus two probe sets: mated probes (person enrolled) and non-mated probes (impostors)."""

    gallery: tuple[tuple[str, str], ...]  # (person, image)
    mated: tuple[tuple[str, str], ...]
    non_mated: tuple[tuple[str, str], ...]
    seed: int

    @property
    def gallery_people(self) -> list[str]:
        return sorted({p for p, _ in self.gallery})


def read_identities(root: str | Path) -> list[tuple[str, str]]:
    """(person, image) items from a folder with one sub-folder per person, or a CSV ``person,image``."""
    root = Path(root)
    if root.is_file():
        with root.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"person", "image"} <= set(reader.fieldnames):
                raise FacelensError(f"{root}: need columns person,image")
            return [(r["person"], str(root.parent / r["image"])) for r in reader]
    if not root.is_dir():
        raise FacelensError(f"{root}: not a folder of people (one sub-folder per person) or a person,image CSV")
    items = [
        (person.name, str(img))
        for person in sorted(p for p in root.iterdir() if p.is_dir())
        for img in sorted(person.iterdir())
        if img.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not items:
        raise FacelensError(f"{root}: no images found in per-person sub-folders")
    return items


def split_identification(
    items: list[tuple[str, str]], seed: int = 0, gallery_per_person: int = 1, impostor_share: float = 0.2
) -> IdentificationSplit:
    """Leave ``impostor_share`` of the people out of the gallery (all their images become non-mated probes);
    enrol ``gallery_per_person`` images of every other person and use their remaining images as mated probes.
    People with too few images to give a probe are enrolled but not probed."""
    if not 0.0 <= impostor_share < 1.0:
        raise ValueError(f"impostor_share must be in [0, 1), got {impostor_share}")
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[str]] = {}
    for person, image in items:
        by_person.setdefault(person, []).append(image)
    people = sorted(by_person)
    n_out = int(round(impostor_share * len(people)))
    if impostor_share > 0 and n_out == 0 and len(people) > 1:
        n_out = 1
    order = rng.permutation(len(people))
    left_out = {people[i] for i in order[:n_out]}
    gallery, mated, non_mated = [], [], []
    for person in people:
        images = [by_person[person][i] for i in rng.permutation(len(by_person[person]))]
        if person in left_out:
            non_mated += [(person, img) for img in images]
        else:
            gallery += [(person, img) for img in images[:gallery_per_person]]
            mated += [(person, img) for img in images[gallery_per_person:]]
    return IdentificationSplit(tuple(gallery), tuple(mated), tuple(non_mated), seed)
