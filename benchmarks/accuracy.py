"""Benchmark: accuracy and cost of every embedder (and the fusion) on LFW, beside face_recognition 1.3.0.

On the same images, for each embedder:
- LFW DevTest pairs (pairsDevTest.txt, pairs where both faces are found): stratified 10-fold accuracy (threshold
  chosen on the other folds; for the fusion, its weights too: nested, so it is not judged on what it was fitted
  on), and TAR at FAR 1e-3 with the DevTest genuine pairs against *every* different-person pair among the DevTest
  images (the 500 impostor pairs of the file cannot resolve 1e-3);
- the LFW identification subset (identification_subset.csv, split_identification seed 0 as `facelens eval
  identify`): rank-1 and open-set FNIR at FPIR 1%;
- ms per face: embedding only (crop + network) and whole pipeline (decode + detect + crop + network), timed on a
  fixed sample in rounds of alternating order, so the ratio to face_recognition is measured under the same load.

Every image is decoded and detected once (the default detector, largest face); each embedder embeds the crops
once, cached in --cache (an .npz per embedder) so a re-run only re-times. face_recognition runs its own detector
(HOG, as ours) and scores by −euclidean distance, as its compare_faces does.

Fusion: the search of concatenated √wᵢ·vᵢ vectors (one search) against per-member top-k searches whose union
is re-scored with Σ wᵢ cosᵢ: both are printed, with how often the top-1 agrees.

    python benchmarks/accuracy.py [--data ../shared/data] [--cache /tmp/facelens-accuracy] [--sample 100]
    python benchmarks/accuracy.py --pairs 150 --embedders dlib_onnx,face_recognition   # a quick look

Measured 2026-12-01 (2 cores shared with other jobs; ms vary ±50 % between runs, ratios less):

    embedder             pairs   acc10 TAR@1e-3  rank1  FNIR@1% FNIR@10% embed ms  x ref  pipe ms  x ref
    dlib_onnx              998  0.9880   0.9357  0.982    0.050    0.020      5.0   0.04     13.6   0.10
    dlib                   998  0.9880   0.9357  0.982    0.050    0.020    106.2   0.92    114.7   0.81
    dlib_onnx_flip         998  0.9850   0.9518  0.982    0.047    0.023     13.7   0.12     22.2   0.16
    mobilefacenet          998  0.9910   0.9839  0.991    0.015    0.012     15.3   0.13     23.8   0.17
    insightface_mbf        998  0.9930   0.9880  0.991    0.009    0.009     28.8   0.25     37.4   0.26 (non-commercial)
    dlib+mobilefacenet     998  0.9910   0.9880  0.991    0.012    0.012     29.0   0.25     37.6   0.26
    face_recognition       996  0.9829   0.9155  0.980    0.146    0.047    115.2   1.00    142.0   1.00

Fusion search: per-member top-1 searches re-scored agree with the concatenated (exact) top-1 for 97.7 % of 430
probes against 1,492 gallery faces; the union of per-member top-5 for 100 %.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

EMBEDDERS = ("dlib_onnx", "dlib", "dlib_onnx_flip", "mobilefacenet", "insightface_mbf", "dlib+mobilefacenet")
REFERENCE = "face_recognition"
NON_COMMERCIAL = {"insightface_mbf"}


def detect_all(paths: list[str]) -> tuple[dict, float]:
    """(path → (image, largest face)) and the mean ms per image of decode + detect."""
    from facelens.engine import models

    pipe = models()
    found, start = {}, time.perf_counter()
    for path in paths:
        image = pipe.decode(path)
        faces = pipe.detector.detect(image)
        if faces:
            found[path] = (image, faces[0])
    return found, (time.perf_counter() - start) * 1000 / len(paths)


def embed_all(name: str, found: dict, cache: Path) -> dict[str, np.ndarray]:
    file = cache / f"{name.replace('+', '_')}.npz"
    if file.is_file():
        with np.load(file) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"]))
    if name == REFERENCE:
        vectors = reference_vectors(list(found))
    else:
        from facelens.embed import get_embedder

        embedder = get_embedder(name)
        keys = list(found)
        crops = [embedder.crops(found[k][0], [found[k][1]])[0] for k in keys]
        vectors = dict(zip(keys, np.concatenate([embedder.embed_crops(crops[i : i + 64]) for i in range(0, len(crops), 64)])))
    np.savez(file, keys=np.array(list(vectors), str), vectors=np.stack(list(vectors.values())))
    return vectors


def reference_vectors(paths: list[str]) -> dict[str, np.ndarray]:
    """face_recognition's encoding of the largest face it finds in each image (its own HOG detector)."""
    import face_recognition

    out = {}
    for path in paths:
        image = face_recognition.load_image_file(path)
        locations = face_recognition.face_locations(image)
        if locations:
            largest = max(locations, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            out[path] = np.asarray(face_recognition.face_encodings(image, [largest])[0], np.float32)
    return out


def similarity(name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine for ours (unit vectors); −euclidean distance for face_recognition."""
    if name == REFERENCE:
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return -np.sqrt(np.maximum(d2, 0))
    return a @ b.T


def verification(name: str, vectors: dict, devtest, members: list[dict] | None = None) -> dict:
    from facelens.evaluate.metrics import kfold_accuracy, tar_at_far

    usable = [p for p in devtest.pairs if p.a in vectors and p.b in vectors]
    scores = np.array([similarity(name, vectors[p.a][None], vectors[p.b][None])[0, 0] for p in usable])
    labels = np.array([p.same for p in usable])
    if members is not None:  # the fusion: weights re-fitted on the training folds only
        from facelens.embed.fusion import nested_cv_accuracy

        member_scores = np.array([[float(m[p.a] @ m[p.b]) for m in members] for p in usable])
        accuracy = nested_cv_accuracy(member_scores, labels)
    else:
        accuracy = kfold_accuracy(scores, labels)[0]
    keys = [k for k in devtest.images() if k in vectors]
    people = np.array([Path(k).parent.name for k in keys])
    matrix = np.stack([vectors[k] for k in keys])
    iu = np.triu_indices(len(keys), 1)
    impostors = similarity(name, matrix, matrix)[iu][people[iu[0]] != people[iu[1]]]
    genuine = scores[labels]
    tar = tar_at_far(np.concatenate([genuine, impostors]), np.r_[np.ones(len(genuine), bool), np.zeros(len(impostors), bool)], 1e-3)[0]
    return {"pairs": len(usable), "acc10": accuracy, "tar_far1e-3": tar, "impostors": len(impostors)}


def identification(name: str, vectors: dict, split) -> dict:
    from facelens.evaluate.embeddings import EmbeddingSet
    from facelens.evaluate.identification import evaluate_identification

    images = [img for _, img in split.gallery + split.mated + split.non_mated]
    emb = EmbeddingSet(name, {k: vectors[k] for k in images if k in vectors},
                       {k: "no face detected" for k in images if k not in vectors})
    # face_recognition ranks by distance (not a dot product): evaluate its own measure on the same split
    measure = (lambda probes, gallery: similarity(REFERENCE, probes, gallery)) if name == REFERENCE else None
    metrics = evaluate_identification(split, pipeline=SimpleNamespace(model_id=name), embeddings=emb,
                                      similarity=measure).metrics
    return {"rank1": metrics.cmc["rank1"], "fnir_fpir1%": metrics.fnir_at_fpir["0.01"],
            "fnir_fpir10%": metrics.fnir_at_fpir["0.1"],
            "resolvable": metrics.fpir_resolvable["0.01"], "non_mated": metrics.n_non_mated}


def fusion_search_comparison(fused: dict, members: list[dict], weights: np.ndarray, split, devtest) -> dict:
    """How often per-member top-k searches, their union re-scored with Σ wᵢ cosᵢ, find the same top-1 as one
    search of the concatenated vectors (which is exact by construction). Gallery: the identification gallery plus
    every DevTest image as distractors; probes: the identification probes."""
    probes = [img for _, img in split.mated + split.non_mated if img in fused]
    gallery_keys = [k for k in dict.fromkeys([img for _, img in split.gallery] + devtest.images())
                    if k in fused and k not in set(probes)]
    exact = np.argmax(np.stack([fused[p] for p in probes]) @ np.stack([fused[g] for g in gallery_keys]).T, axis=1)
    member_sims = [np.stack([m[p] for p in probes]) @ np.stack([m[g] for g in gallery_keys]).T for m in members]
    agreement = {}
    for k in (1, 5, 20):
        agree = 0
        for i in range(len(probes)):
            union = np.unique(np.concatenate([np.argsort(-s[i])[:k] for s in member_sims]))
            rescored = sum(w * s[i, union] for w, s in zip(weights, member_sims))
            agree += int(union[int(np.argmax(rescored))] == exact[i])
        agreement[f"top{k}"] = round(agree / len(probes), 4)
    return {"probes": len(probes), "gallery": len(gallery_keys), "top1_agreement_by_k": agreement}


def timing(names: list[str], found: dict, sample: int, rounds: int = 3) -> dict[str, dict]:
    """Median ms per face of embedding (crop + network, batched) and of face_recognition's encodings, over
    rounds of rotating order on the same ``sample`` faces."""
    from facelens.embed import get_embedder

    keys = list(found)[:sample]
    embedders = {n: get_embedder(n) for n in names if n != REFERENCE}
    for embedder in embedders.values():  # load the sessions outside the timing
        embedder.embed(found[keys[0]][0], [found[keys[0]][1]])
    import face_recognition

    ref_boxes = {}
    for k in keys:
        image = found[k][0]
        locations = face_recognition.face_locations(image)
        ref_boxes[k] = locations[:1] or [(0, image.shape[1], image.shape[0], 0)]
    per: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            if name == REFERENCE:
                for k in keys:
                    face_recognition.face_encodings(found[k][0], ref_boxes[k])
            else:
                embedder = embedders[name]
                crops = [embedder.crops(found[k][0], [found[k][1]])[0] for k in keys]
                for i in range(0, len(crops), 64):
                    embedder.embed_crops(crops[i : i + 64])
            per[name].append((time.perf_counter() - start) * 1000 / len(keys))
    return {n: {"embed_ms": float(np.median(v))} for n, v in per.items()}


def reference_detect_ms(paths: list[str]) -> float:
    import face_recognition

    start = time.perf_counter()
    for path in paths:
        face_recognition.face_locations(face_recognition.load_image_file(path))
    return (time.perf_counter() - start) * 1000 / len(paths)


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("FACELENS_TEST_DATA", root.parent / "shared" / "data"))
    ap.add_argument("--cache", default="/tmp/facelens-accuracy", help="folder of per-embedder .npz embeddings")
    ap.add_argument("--sample", type=int, default=100, help="faces timed per round")
    ap.add_argument("--pairs", type=int, default=0, help="a fixed subset of this many DevTest pairs (0: all)")
    ap.add_argument("--embedders", default=",".join(EMBEDDERS + (REFERENCE,)))
    args = ap.parse_args()
    os.environ.setdefault("FACELENS_MODEL_DIR", str(root.parent / "shared" / "models"))
    from facelens.embed import get_embedder
    from facelens.evaluate.protocols import read_identities, read_pairs, split_identification

    lfw = Path(args.data) / "identity" / "lfw"
    devtest = read_pairs(lfw / "pairsDevTest.txt", lfw)
    if args.pairs:
        devtest = devtest.subset(args.pairs, seed=0)
    split = split_identification(read_identities(lfw / "identification_subset.csv"), seed=0)
    paths = list(dict.fromkeys(devtest.images() + [img for _, img in split.gallery + split.mated + split.non_mated]))
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    names = args.embedders.split(",")

    found, detect_ms = detect_all(paths)
    print(f"{len(found)} of {len(paths)} images with a face; decode + detect {detect_ms:.1f} ms/image")
    vectors = {n: embed_all(n, found, cache) for n in names}
    times = timing(names, found, args.sample)
    ref_detect_ms = reference_detect_ms(list(found)[: args.sample]) if REFERENCE in names else float("nan")

    rows = []
    for name in names:
        members = fusion = None
        if "+" in name and name in EMBEDDERS:
            fusion = get_embedder(name)
            members = [vectors[m] for m in ("dlib_onnx_flip", "mobilefacenet")] if {"dlib_onnx_flip", "mobilefacenet"} <= set(vectors) else None
        row = {"embedder": name, **verification(name, vectors[name], devtest, members), **identification(name, vectors[name], split), **times[name]}
        row["pipeline_ms"] = row["embed_ms"] + (ref_detect_ms if name == REFERENCE else detect_ms)
        rows.append(row)
        if fusion is not None and members is not None:
            print(f"fusion weights {fusion.weights.tolist()}: concatenated search vs per-member top-k + re-score:",
                  fusion_search_comparison(vectors[name], members, fusion.weights, split, devtest))
    ref = next((r for r in rows if r["embedder"] == REFERENCE), None)
    print(f"\n{'embedder':20} {'pairs':>5} {'acc10':>7} {'TAR@1e-3':>8} {'rank1':>6} {'FNIR@1%':>8} {'FNIR@10%':>8} "
          f"{'embed ms':>8} {'x ref':>6} {'pipe ms':>8} {'x ref':>6}")
    for r in rows:
        embed_ratio = r["embed_ms"] / ref["embed_ms"] if ref else float("nan")
        ratio = r["pipeline_ms"] / ref["pipeline_ms"] if ref else float("nan")
        note = " (non-commercial)" if r["embedder"] in NON_COMMERCIAL else ""
        print(f"{r['embedder']:20} {r['pairs']:5d} {r['acc10']:7.4f} {r['tar_far1e-3']:8.4f} {r['rank1']:6.3f} "
              f"{r['fnir_fpir1%']:8.3f} {r['fnir_fpir10%']:8.3f} {r['embed_ms']:8.1f} {embed_ratio:6.2f} "
              f"{r['pipeline_ms']:8.1f} {ratio:6.2f}{note}")
    r0 = rows[0]
    print(f"\nimpostors for TAR@FAR: {r0['impostors']}; identification: {r0['non_mated']} non-mated probes "
          f"(FPIR 1% resolvable: {r0['resolvable']}: below 100 of them its threshold is the highest non-mated score). "
          "acc10 of the fusion is nested (weights refitted per fold). Timings on a shared machine: compare ratios, not ms.")


if __name__ == "__main__":
    main()
