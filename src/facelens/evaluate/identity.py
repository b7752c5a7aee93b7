"""Identity preservation: how much of a person's identity survives processing (compression, generative
reconstruction, anonymisation). Compares each original with its processed counterpart and reports the mean
identity similarity and the share still matching at the operating threshold (for anonymisation: the leakage)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facelens.errors import FacelensError
from facelens.evaluate.embeddings import embed_images
from facelens.evaluate.protocols import IMAGE_SUFFIXES


@dataclass(frozen=True)
class IdentityPreservation:
    n_pairs: int
    n_compared: int  # both images have a face
    n_fte_original: int
    n_fte_processed: int  # processed image without a detectable face (for anonymisation that is not leakage)
    threshold: float
    mean_similarity: float
    median_similarity: float
    share_matching: float  # of compared pairs with similarity >= threshold
    share_matching_all: float  # of all pairs (a processed image without a face counts as not matching)
    per_pair: tuple[dict, ...]

    def to_dict(self, per_pair: bool = True) -> dict:
        out = asdict(self)
        if not per_pair:
            out.pop("per_pair")
        return out


def aligned_sets(originals: str | Path, processed: str | Path) -> list[tuple[str, str]]:
    """Image pairs with the same relative path (suffix ignored) under two folders."""
    a_root, b_root = Path(originals), Path(processed)
    for root in (a_root, b_root):
        if not root.is_dir():
            raise FacelensError(f"{root}: not a folder of images")

    def index(root: Path) -> dict[str, Path]:
        return {str(p.relative_to(root).with_suffix("")): p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}

    a, b = index(a_root), index(b_root)
    common = sorted(set(a) & set(b))
    if not common:
        raise FacelensError(f"no image in {b_root} has a counterpart with the same name in {a_root}")
    return [(str(a[k]), str(b[k])) for k in common]


def identity_preservation(pairs: list[tuple[str, str]], threshold: float | None = None, pipeline=None) -> IdentityPreservation:
    """``pairs`` of (original, processed) images; ``threshold`` defaults to the model's measured verification
    threshold (``facelens.decide``)."""
    if pipeline is None:
        from facelens.engine import models

        pipeline = models()
    from facelens.decide import ThresholdPolicy

    threshold = ThresholdPolicy.for_verify(threshold).threshold(pipeline.model_id)
    emb = embed_images([p for pair in pairs for p in pair], pipeline=pipeline)
    rows, sims = [], []
    fte_a = fte_b = 0
    for a, b in pairs:
        va, vb = emb.get(a), emb.get(b)
        fte_a += va is None
        fte_b += va is not None and vb is None
        sim = float(np.dot(va, vb)) if va is not None and vb is not None else None
        if sim is not None:
            sims.append(sim)
        rows.append({"original": a, "processed": b, "similarity": sim, "match": sim is not None and sim >= threshold})
    sims_a = np.asarray(sims)
    compared = len(sims)
    matches = int((sims_a >= threshold).sum()) if compared else 0
    return IdentityPreservation(
        n_pairs=len(pairs), n_compared=compared, n_fte_original=fte_a, n_fte_processed=fte_b, threshold=float(threshold),
        mean_similarity=float(sims_a.mean()) if compared else float("nan"),
        median_similarity=float(np.median(sims_a)) if compared else float("nan"),
        share_matching=matches / compared if compared else float("nan"),
        share_matching_all=matches / max(len(pairs) - fte_a, 1),
        per_pair=tuple(rows),
    )
