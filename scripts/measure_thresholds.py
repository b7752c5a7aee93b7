"""Measure a model's decision profile on LFW and write src/facelens/data/<model_id>.json.

- verify_threshold: the similarity that maximises accuracy on the LFW View-1 DevTest pairs (pairsDevTest.txt).
- impostor distribution: similarities of all pairs of images of *different* people among the staged LFW images,
  leaving out the people of identification_subset.csv (so the 1:N test is not tuned on its own impostors).

- fusion (``--embedder dlib+mobilefacenet``): each member embeds the images, the members' weights are fitted on
  the DevTest pairs (facelens.embed.fusion.fit_weights) and stored in the profile under "fusion"; the thresholds
  above are then measured on the fused vectors.

Run: python scripts/measure_thresholds.py [--data ../shared/data] [--embedder dlib_onnx_flip] [--out FILE]
(the file is named after the embedder's model id; --out writes elsewhere, e.g. to compare runtimes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from facelens.embed import DEFAULT_EMBEDDER, get_embedder
from facelens.embed.fusion import FUSIONS, fit_weights, fusion_model_id, stored_weights
from facelens.errors import ModelUnavailableError
from facelens.engine import FaceAnalyzer


def embed_labelled(images: list[Path], embedder: str) -> dict[Path, np.ndarray]:
    """The embedding of LFW's labelled face of each image where one is found: the face nearest the image centre
    (facelens.evaluate.protocols.centred_face; the largest face is another person in 3 staged images)."""
    from facelens.evaluate.protocols import centred_face

    results = FaceAnalyzer(embedder=embedder).run([str(p) for p in images])
    return {Path(r.source): r.faces.embedding[centred_face(r.faces.box, (r.height, r.width))]
            for r in results if len(r.faces)}


def devtest_pairs(lfw: Path) -> list[tuple[Path, Path, int]]:
    """The LFW View-1 DevTest pairs as (image a, image b, same person)."""
    from facelens.evaluate.protocols import read_pairs

    return [(Path(p.a), Path(p.b), int(p.same)) for p in read_pairs(lfw / "pairsDevTest.txt", lfw).pairs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("FACELENS_TEST_DATA", "../shared/data"))
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--out", help="where to write the profile (default: src/facelens/data/<model_id>.json)")
    args = parser.parse_args()
    lfw = Path(args.data) / "identity" / "lfw"
    images = sorted((lfw / "lfw_deepfunneled").glob("*/*.jpg"))
    pairs = devtest_pairs(lfw)
    fusion = None
    if args.embedder in FUSIONS:
        members = [embed_labelled(images, name) for name in FUSIONS[args.embedder]]
        model_id = fusion_model_id([get_embedder(name).model_id for name in FUSIONS[args.embedder]])
        found = {p for p in images if all(p in m for m in members)}
        usable = [(a, b, s) for a, b, s in pairs if a in found and b in found]
        member_sims = np.array([[float(m[a] @ m[b]) for m in members] for a, b, _ in usable])
        weights, report = fit_weights(member_sims, np.array([s for _, _, s in usable]))
        try:  # the model id names the vectors of the stored weights: keep them (new weights need a new model id)
            stored = stored_weights(model_id, [get_embedder(name).model_id for name in FUSIONS[args.embedder]])
            if not np.allclose(stored, weights, atol=1e-9):
                print(f"kept the stored weights {stored} (refitted now: {weights.tolist()}; new weights give new "
                      "vectors, so they need a new model id)", file=sys.stderr)
                report["refitted_weights"] = [float(w) for w in weights]
                weights = np.asarray(stored, np.float64)
        except ModelUnavailableError:
            pass
        scales = np.sqrt(weights).astype(np.float32)
        emb = {p: np.concatenate([m[p] * s for m, s in zip(members, scales)]) for p in sorted(found)}
        fusion = {"members": [get_embedder(name).model_id for name in FUSIONS[args.embedder]],
                  "weights": [float(w) for w in weights], "fit": report}
        print(json.dumps(fusion, indent=1), file=sys.stderr)
    else:
        model_id = get_embedder(args.embedder).model_id
        emb = embed_labelled(images, args.embedder)
    missing = len(images) - len(emb)
    print(f"{len(emb)} of {len(images)} images embedded ({missing} without a face)", file=sys.stderr)

    # Verification threshold on DevTest pairs.
    sims, same = [], []
    for a, b, s in pairs:
        if a in emb and b in emb:
            sims.append(float(emb[a] @ emb[b]))
            same.append(s)
    sims_a, same_a = np.array(sims), np.array(same)
    candidates = np.unique(sims_a)
    mids = (candidates[:-1] + candidates[1:]) / 2
    acc = np.array([((sims_a >= t) == same_a).mean() for t in mids])
    best = mids[np.flatnonzero(acc == acc.max())]
    threshold = float(np.median(best))
    accuracy = float(((sims_a >= threshold) == same_a).mean())
    fmr = float((sims_a[same_a == 0] >= threshold).mean())
    fnmr = float((sims_a[same_a == 1] < threshold).mean())

    # Impostor distribution, leaving out the identification-subset people.
    held_out = {line.split(",")[0] for line in (lfw / "identification_subset.csv").read_text().split("\n")[1:] if line}
    keys = [k for k in emb if k.parent.name not in held_out]
    names = np.array([k.parent.name for k in keys])
    matrix = np.stack([emb[k] for k in keys])
    sim = matrix @ matrix.T
    iu = np.triu_indices(len(keys), 1)
    impostor = sim[iu][names[iu[0]] != names[iu[1]]]
    impostor.sort()
    n = len(impostor)
    grid = [10 ** e for e in np.arange(-1, np.log10(20 / n), -0.25)]
    thresholds = [float(np.quantile(impostor, 1 - f)) for f in grid]
    # Beyond the measured range: log-linear extrapolation of the last decade and a half (FMR <= 1e-3).
    deep = [(f, t) for f, t in zip(grid, thresholds) if f <= 1e-3]
    slope = np.polyfit([t for _, t in deep], [np.log(f) for f, _ in deep], 1)[0]
    tail_mass, start, scale = grid[-1], thresholds[-1], float(-1.0 / slope)
    out = {
        "model_id": model_id,
        "verify_threshold": round(threshold, 5),
        "impostor": {
            "fmr": grid,
            "threshold": thresholds,
            "tail_start": start,
            "tail_mass": tail_mass,
            "tail_scale": scale,
        },
        "notes": {
            "verify": f"LFW DevTest pairs ({len(sims)} of 1000 usable): accuracy {accuracy:.4f}, FMR {fmr:.4f}, FNMR {fnmr:.4f}",
            "impostor": f"{n} impostor pairs from {len(keys)} LFW images of {len(set(names))} people "
            "(identification_subset people left out); exponential tail fitted to FMR <= 1e-3 and used below the last measured point",
        },
    }
    if fusion is not None:
        out["fusion"] = fusion
    target = Path(args.out) if args.out else Path(__file__).resolve().parents[1] / "src" / "facelens" / "data" / f"{model_id}.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["notes"], indent=1))


if __name__ == "__main__":
    main()
