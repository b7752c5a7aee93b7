"""Benchmark: what alignment, test-time augmentation and fusion calibration do for the commercially clean embedders
on LFW DevTest, with every choice made on training folds only (no pairsDevTrain is staged).

On LFW's labelled face of each staged image (the centred one, facelens.evaluate.protocols.centred_face), the 998
DevTest pairs where HOG finds both faces (the pairs of benchmarks/accuracy.py), stratified 10-fold (seed 0):
- MobileFaceNet aligned on the 5 landmarks of each detector: HOG + dlib's 68 points (what the pipeline uses with
  HOG), CenterFace's and RetinaFace-MobileNet0.25's own 5 points, and the mean of the three;
- test-time augmentation: the mirror image (the shipped model), and 2 scales (×0.95, ×1.05) and 4 shifts (±2 px)
  of the ArcFace template, each with its mirror, averaged;
- "nested pick": for each outer fold the variant with the best training-fold accuracy (ties: lower training EER) and
  its training threshold, judged on the held-out fold: what choosing among the variants is worth on unseen pairs;
- fusion of dlib (with or without its mirror) and MobileFaceNet (with or without): weights by logistic regression
  on the training folds (facelens.embed.fusion.logistic_weights); "member set picked inside" chooses the member set
  by an inner 9-fold CV of the training folds too; a quality-aware fusion (logistic regression on the members'
  similarities and their products with the pair's lower face quality);
- ms per face of each (crop + network, and the detectors' landmarks per image), rounds of alternating order.

    python benchmarks/alignment.py [--data ../shared/data] [--cache /tmp/facelens-alignment]

Measured 2026-12-02 (2 cores shared with other jobs: compare the ms as ratios):

    MobileFaceNet on the landmarks of   none    mirror  +scales +shifts all 14   TAR@1e-3 (mirror)
    hog (dlib 68 -> 5)                  0.9940  0.9930  0.9930  0.9930  0.9930   0.9880 (none: 0.9900)
    centerface                          0.9900  0.9900  0.9900  0.9920  0.9900   0.9859
    retinaface                          0.9920  0.9920  0.9920  0.9920  0.9920   0.9859
    mean of the three                   0.9930  0.9930  0.9930  0.9930  0.9930   0.9880
    nested pick among the 20 variants: 0.9940 (HOG landmarks without the mirror, in all 10 folds)

    fusion, nested (weights and threshold on training folds): dlib_flip+mfn_flip (shipped) 0.9930, dlib+mfn_flip
    0.9940, dlib_flip+mfn 0.9920, dlib+mfn 0.9930; member set picked inside the training folds 0.9930;
    quality-aware fusion 0.9920. Members alone: dlib 0.9900, dlib_flip 0.9870, mfn 0.9940, mfn_flip 0.9930.

    ms per face, x the shipped mirror-averaged MobileFaceNet (8.1 ms): 1 crop 0.58, +scales 3.46, +shifts 5.56,
    14 crops 8.04; landmarks per image: hog 0.91, centerface 0.67, retinaface 0.50

Read: the differences are 1-2 of 998 pairs (McNemar-insignificant). HOG's 68-point landmarks align MobileFaceNet at
least as well as the detectors' own 5 points (CenterFace's cost 3 pairs: the default detector's change to
centerface+hog moves MobileFaceNet's DevTest accuracy from 0.993 to 0.990); template jitter adds nothing at 3-8x the
cost; the mirror adds nothing on DevTest (one pair the other way) and doubles the cost; no calibration of the fusion
beats the shipped one once its choice is made on training folds. With the largest face instead of the centred one
(``--select largest``) the MobileFaceNet figures are 0.002 lower (Condoleezza_Rice_0005 and Tassos_Papadopoulos_0001,
where the largest face is another person).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

#: Template jitters (scale, dx, dy) of the ArcFace 112 template; the first is the plain alignment.
JITTERS = ((1.0, 0, 0), (0.95, 0, 0), (1.05, 0, 0), (1.0, -2, 0), (1.0, 2, 0), (1.0, 0, -2), (1.0, 0, 2))
DETECTORS = ("hog", "centerface", "retinaface")
TTA = {"none": ([0], False), "mirror": ([0], True), "mirror+scales": ([0, 1, 2], True),
       "mirror+shifts": ([0, 3, 4, 5, 6], True), "all 14 crops": (list(range(len(JITTERS))), True)}


def jittered_crop(image: np.ndarray, points: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    """facelens.align.similarity_crop onto the ArcFace template scaled about its centre and shifted."""
    import cv2

    from facelens.align import ARCFACE_TEMPLATE

    centre = ARCFACE_TEMPLATE.mean(axis=0)
    template = (ARCFACE_TEMPLATE - centre) * scale + centre + np.array([dx, dy], np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), template, method=cv2.LMEDS)
    return cv2.warpAffine(image, matrix, (112, 112), borderMode=cv2.BORDER_REPLICATE)


def detections(paths: list[str], name: str, select: str, cache: Path) -> dict:
    """Boxes, 5 landmarks and (HOG) quality of the selected face of each image, by detector; cached."""
    file = cache / f"det_{name}_{select}.npz"
    if file.is_file():
        with np.load(file) as data:
            return {k: data[k] for k in data.files}
    from facelens.analyze.quality import assess_quality
    from facelens.detect import get_detector
    from facelens.evaluate.protocols import centred_face
    from facelens.io.image import decode_image

    detector = get_detector(name)
    out = {"found": np.zeros(len(paths), bool), "boxes": np.zeros((len(paths), 4), np.float32),
           "landmarks": np.zeros((len(paths), 5, 2), np.float32), "quality": np.zeros(len(paths), np.float32)}
    for i, path in enumerate(paths):
        image = decode_image(path)
        faces = detector.detect(image)
        if faces:
            face = faces[centred_face([f.box for f in faces], image.shape) if select == "centre" else 0]
            out["found"][i], out["boxes"][i], out["landmarks"][i] = True, face.box, face.landmarks
            out["quality"][i] = assess_quality(image, face).score
    np.savez(file, **out)
    return out


def mean_landmarks(dets: dict) -> np.ndarray:
    """Per image the mean of the detectors' landmarks that agree with HOG's face (nose within 10 px)."""
    base = np.where(dets["hog"]["found"][:, None, None], dets["hog"]["landmarks"], dets["centerface"]["landmarks"])
    stack, count = base.copy(), np.ones(len(base))
    for name in ("centerface", "retinaface"):
        same = dets[name]["found"] & (np.linalg.norm(dets[name]["landmarks"][:, 2] - base[:, 2], axis=1) < 10)
        stack[same] += dets[name]["landmarks"][same]
        count[same] += 1
    return stack / count[:, None, None]


def mobilefacenet_vectors(paths: list[str], landmarks: np.ndarray, label: str, cache: Path) -> np.ndarray:
    """Unit vectors [n, jitter, mirror, 128] of MobileFaceNet; cached."""
    file = cache / f"mfn_{label}.npy"
    if file.is_file():
        return np.load(file)
    from facelens.embed import get_embedder
    from facelens.io.image import decode_image

    embedder = get_embedder("mobilefacenet")
    session = embedder.session()
    mean, scale = np.array(embedder.spec.mean, np.float32), 1 / np.array(embedder.spec.std, np.float32)
    out = np.zeros((len(paths), len(JITTERS), 2, 128), np.float32)
    for start in range(0, len(paths), 16):
        rows = range(start, min(start + 16, len(paths)))
        crops = []
        for i in rows:
            image = decode_image(paths[i])
            for jitter in JITTERS:
                crop = jittered_crop(image, landmarks[i], *jitter)
                crops += [crop, crop[:, ::-1]]
        batch = ((np.stack(crops).astype(np.float32) - mean) * scale).transpose(0, 3, 1, 2)
        raw = np.concatenate([session.run(None, {embedder._input: np.ascontiguousarray(batch[j : j + 32])})[0]
                              for j in range(0, len(batch), 32)])
        out[start : start + len(rows)] = unit(raw).reshape(len(rows), len(JITTERS), 2, -1)
    np.save(file, out)
    return out


def dlib_vectors(paths: list[str], boxes: np.ndarray, label: str, cache: Path) -> np.ndarray:
    """Unit vectors [n, mirror, 128] of dlib's ResNet (onnxruntime) on the chips of ``boxes``; cached."""
    file = cache / f"dlib_{label}.npy"
    if file.is_file():
        return np.load(file)
    import facelens.models.catalog  # noqa: F401  (registers the shape predictor)
    from facelens.align import dlib_chips
    from facelens.embed import get_embedder
    from facelens.io.image import decode_image

    embedder = get_embedder("dlib_onnx")
    out = np.zeros((len(paths), 2, 128), np.float32)
    for start in range(0, len(paths), 32):
        rows = range(start, min(start + 32, len(paths)))
        chips = [dlib_chips(decode_image(paths[i]), [boxes[i]])[0] for i in rows]
        vectors = embedder.embed_crops(chips + [c[:, ::-1] for c in chips])
        out[start : start + len(rows), 0], out[start : start + len(rows), 1] = vectors[: len(rows)], vectors[len(rows) :]
    np.save(file, out)
    return out


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class Protocol:
    """The 998 DevTest pairs (both faces found by HOG), their 10 folds, and the TAR@FAR impostors."""

    def __init__(self, lfw: Path, paths: list[str], hog_found: np.ndarray) -> None:
        from sklearn.model_selection import StratifiedKFold

        from facelens.evaluate.protocols import read_pairs

        index = {p: i for i, p in enumerate(paths)}
        pairs = read_pairs(lfw / "pairsDevTest.txt", lfw).pairs
        a, b = np.array([index[p.a] for p in pairs]), np.array([index[p.b] for p in pairs])
        keep = hog_found[a] & hog_found[b]
        self.a, self.b, self.y = a[keep], b[keep], np.array([p.same for p in pairs], bool)[keep]
        self.folds = list(StratifiedKFold(10, shuffle=True, random_state=0).split(self.a, self.y))
        images = np.unique(np.concatenate([self.a, self.b]))
        people = np.array([Path(p).parent.name for p in paths])
        self.images, iu = images, np.triu_indices(len(images), 1)
        self.impostor_pairs = tuple(x[people[images][iu[0]] != people[images][iu[1]]] for x in iu)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", vectors[self.a], vectors[self.b])

    def kfold(self, scores: np.ndarray) -> float:
        from facelens.evaluate.metrics import best_accuracy_threshold

        right = 0
        for train, test in self.folds:
            _, t = best_accuracy_threshold(scores[train], self.y[train])
            right += int(((scores[test] >= t) == self.y[test]).sum())
        return right / len(self.y)

    def tar(self, vectors: np.ndarray) -> float:
        """TAR at FAR 1e-3: genuine pairs against every different-person pair among the DevTest images."""
        v = vectors[self.images]
        i, j = self.impostor_pairs
        impostors = np.einsum("ij,ij->i", v[i], v[j])
        threshold = np.sort(impostors)[::-1][int(1e-3 * len(impostors))]
        return float((self.scores(vectors)[self.y] > threshold).mean())

    def nested_pick(self, candidates: dict[str, np.ndarray]) -> tuple[float, list[str]]:
        from facelens.evaluate.metrics import best_accuracy_threshold, eer

        right, picks = 0, []
        for train, test in self.folds:
            best = None
            for name, s in candidates.items():
                acc, t = best_accuracy_threshold(s[train], self.y[train])
                key = (acc, -eer(s[train], self.y[train])[0])
                if best is None or key > best[0]:
                    best = (key, name, t)
            _, name, t = best
            picks.append(name)
            right += int(((candidates[name][test] >= t) == self.y[test]).sum())
        return right / len(self.y), picks


def fused_right(member_scores: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> int:
    """Pairs of ``test`` judged right by the fusion with weights and threshold fitted on ``train``."""
    from facelens.embed.fusion import logistic_weights
    from facelens.evaluate.metrics import best_accuracy_threshold

    w = logistic_weights(member_scores[train], y[train]) if member_scores.shape[1] > 1 else np.ones(1)
    _, t = best_accuracy_threshold(member_scores[train] @ w, y[train])
    return int(((member_scores[test] @ w >= t) == y[test]).sum())


def fusion_report(proto: Protocol, members: dict[str, np.ndarray], quality: np.ndarray) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from facelens.evaluate.metrics import best_accuracy_threshold

    scores = {k: proto.scores(v) for k, v in members.items()}
    sets = [("dlib_flip", "mfn_flip"), ("dlib", "mfn_flip"), ("dlib_flip", "mfn"), ("dlib", "mfn"), ("mfn_flip",), ("mfn",)]
    y = proto.y
    for cols in sets:
        x = np.stack([scores[c] for c in cols], 1)
        right = sum(fused_right(x, y, train, test) for train, test in proto.folds)
        print(f"  fusion {'+'.join(cols):22} nested (weights and threshold on training folds) {right / len(y):.4f}")
    right, picks = 0, []
    for train, test in proto.folds:
        inner = list(StratifiedKFold(9, shuffle=True, random_state=1).split(train, y[train]))
        cv = {cols: sum(fused_right(np.stack([scores[c] for c in cols], 1)[train], y[train], a, b) for a, b in inner)
              for cols in sets}
        best = max(sets, key=lambda c: cv[c])
        picks.append("+".join(best))
        right += fused_right(np.stack([scores[c] for c in best], 1), y, train, test)
    print(f"  member set picked inside the training folds (inner 9-fold), then fitted: {right / len(y):.4f}  {picks}")
    low = np.minimum(quality[proto.a], quality[proto.b])
    s1, s2 = scores["dlib_flip"], scores["mfn_flip"]
    features = np.column_stack([s1, s2, s1 * low, s2 * low])
    right = 0
    for train, test in proto.folds:
        model = LogisticRegression(C=1e4, max_iter=20_000).fit(features[train], y[train])
        margin = model.decision_function(features)
        _, t = best_accuracy_threshold(margin[train], y[train])
        right += int(((margin[test] >= t) == y[test]).sum())
    print(f"  quality-aware fusion (dlib_flip, mfn_flip, each x the pair's lower quality): {right / len(y):.4f}")


def timings(paths: list[str], landmarks: np.ndarray, found: np.ndarray, rounds: int = 3, n: int = 60) -> None:
    from facelens.detect import get_detector
    from facelens.embed import get_embedder
    from facelens.io.image import decode_image

    rows = np.flatnonzero(found)[:: max(1, int(found.sum()) // n)][:n]
    images = [decode_image(paths[i]) for i in rows]
    embedder = get_embedder("mobilefacenet")
    session = embedder.session()
    mean, scale = np.array(embedder.spec.mean, np.float32), 1 / np.array(embedder.spec.std, np.float32)

    def run(jitters: list[int], mirror: bool) -> None:
        crops = []
        for image, i in zip(images, rows):
            for j in jitters:
                crop = jittered_crop(image, landmarks[i], *JITTERS[j])
                crops += [crop, crop[:, ::-1]] if mirror else [crop]
        batch = ((np.stack(crops).astype(np.float32) - mean) * scale).transpose(0, 3, 1, 2)
        for j in range(0, len(batch), 32):
            session.run(None, {embedder._input: np.ascontiguousarray(batch[j : j + 32])})

    detectors = {name: get_detector(name) for name in DETECTORS}
    for detector in detectors.values():
        detector.detect(images[0])
    cases = {f"mfn TTA {k}": (lambda v=v: run(*v)) for k, v in TTA.items()}
    cases.update({f"landmarks: detect {k} (per image)": (lambda d=d: [d.detect(im) for im in images])
                  for k, d in detectors.items()})
    per: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            cases[name]()
            per[name].append((time.perf_counter() - start) * 1000 / len(images))
    shipped = float(np.median(per["mfn TTA mirror"]))
    print(f"\nms per face ({len(images)} faces, median of {rounds} alternating rounds; x the shipped mirror-averaged mfn):")
    for name, values in per.items():
        print(f"  {name:40} {np.median(values):7.2f} ms  x{np.median(values) / shipped:5.2f}")


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("FACELENS_TEST_DATA", root.parent / "shared" / "data"))
    ap.add_argument("--cache", default="/tmp/facelens-alignment")
    ap.add_argument("--select", choices=("centre", "largest"), default="centre")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("FACELENS_MODEL_DIR", str(root.parent / "shared" / "models"))
    lfw = Path(args.data) / "identity" / "lfw"
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    paths = sorted(str(p) for p in (lfw / "lfw_deepfunneled").glob("*/*.jpg"))

    dets = {name: detections(paths, name, args.select, cache) for name in DETECTORS}
    fallback = dets["centerface"]  # where one detector finds nothing (HOG: 4 images), CenterFace's face
    landmarks = {name: np.where(d["found"][:, None, None], d["landmarks"], fallback["landmarks"]) for name, d in dets.items()}
    landmarks["mean of the three"] = mean_landmarks(dets)
    proto = Protocol(lfw, paths, dets["hog"]["found"])
    print(f"{len(proto.y)} DevTest pairs, {args.select} face, stratified 10-fold (seed 0)", file=sys.stderr)

    mfn = {name: mobilefacenet_vectors(paths, marks, f"{name.split()[0]}_{args.select}", cache)
           for name, marks in landmarks.items()}
    print(f"\n{'MobileFaceNet on the landmarks of':36} {'TTA':14} {'acc10':>7} {'TAR@1e-3':>8}")
    candidates = {}
    for name, x in mfn.items():
        for tta, (jitters, mirror) in TTA.items():
            v = unit(x[:, jitters][:, :, : 2 if mirror else 1].sum(axis=(1, 2)))
            candidates[f"{name} / {tta}"] = proto.scores(v)
            print(f"{name:36} {tta:14} {proto.kfold(candidates[f'{name} / {tta}']):7.4f} {proto.tar(v):8.4f}")
    accuracy, picks = proto.nested_pick(candidates)
    print(f"nested pick among the {len(candidates)} alignment x TTA variants: {accuracy:.4f}  picks: {picks}")

    hog_boxes = np.where(dets["hog"]["found"][:, None], dets["hog"]["boxes"], fallback["boxes"])
    dlib = dlib_vectors(paths, hog_boxes, f"hog_{args.select}", cache)
    hog_mfn = mfn["hog"]
    members = {"dlib": unit(dlib[:, 0]), "dlib_flip": unit(dlib.sum(1)), "mfn": unit(hog_mfn[:, 0, 0]),
               "mfn_flip": unit(hog_mfn[:, 0].sum(1))}
    print("\nfusion on HOG faces (dlib chips from HOG boxes, MobileFaceNet on HOG's 68 -> 5 landmarks):")
    for name, v in members.items():
        print(f"  {name:10} acc10 {proto.kfold(proto.scores(v)):.4f}  TAR@1e-3 {proto.tar(v):.4f}")
    fusion_report(proto, members, dets["hog"]["quality"])
    if not args.no_timing:
        timings(paths, landmarks["hog"], dets["hog"]["found"])


if __name__ == "__main__":
    main()
