"""Face detectors compared on the 1,549 images of the LFW View-1 DevTest pairs, all in one run.

    python benchmarks/detect.py [--data ../shared/data] [--detectors hog,yunet,retinaface,centerface,centerface+hog]
                                [--no-accuracy] [--no-photos]
    python benchmarks/detect.py --thresholds | --fit-boxes

A detector is named as ``get_detector`` names it (``centerface+hog``: CenterFace, then HOG where it finds no face),
optionally with an input size for the onnxruntime ones (``centerface@160``: letterboxed to at most 160 px).
Per detector: images/s with the process's default threads and with one thread ("per core"), per-image ``detect``
and batched ``detect_many``; images where no face is found, in the DevTest images and in the other LFW images
(every LFW image: each is a single-subject photo, so each no-face is a miss); misses relative to HOG (HOG finds a
face, the detector does not) over both; LFW DevTest verification accuracy with the default embedder on that
detector's largest face (a pair with a missing face counts as an error) at the embedder's calibrated threshold.
Then (unless ``--no-photos``) ms per photo and faces found on the larger photos of the data set (face_recognition's
and dlib's examples, 240 px to 2,200 px): LFW's 250×250 crops flatter HOG, whose cost grows with the pixels.

``--fit-boxes`` measures each onnxruntime detector's map to dlib's box geometry (``dlib_box``) on the LFW images
outside DevTest. ``--thresholds`` measures score thresholds instead: every candidate above 0.05 on the LFW images (the face at the
image centre is the subject) and on dlib's annotated PASCAL photos (a candidate that overlaps no annotated face by
IoU 0.3 is a false positive), and prints the subject-score quantiles, the highest false-positive scores, and at
each threshold the LFW subjects lost and the false positives left. Images are decoded before timing; the timings
are of detection alone. Timings on a shared machine drift: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("FACELENS_MODEL_DIR", str(ROOT.parent / "shared" / "models"))

ONNX = ("retinaface", "centerface")


def label(name: str) -> str:
    """The detector's name, marked when it is facelens' default."""
    from facelens.detect import DEFAULT_DETECTOR

    return f"{name} (default)" if name == DEFAULT_DETECTOR else name


def load(paths: list[str]) -> list[np.ndarray]:
    from facelens.io.image import decode_image

    return [decode_image(p) for p in paths]


def detector(spec: str, threads: int | None = None, **options):
    """``name`` or ``name@input_size``; ``threads`` for the onnxruntime detectors in it."""
    from facelens.detect import get_detector

    name, _, size = spec.partition("@")
    if any(part in ONNX for part in name.split("+")):
        options["threads"] = threads
        if size:
            options["input_size"] = int(size)
    return get_detector(name, **options)


def uses_onnx(spec: str) -> bool:
    return any(part in ONNX for part in spec.partition("@")[0].split("+"))


def photos(data: Path) -> list[tuple[str, np.ndarray]]:
    from facelens.io.image import decode_image

    root = data / "identity"
    paths = sorted((root / "face_recognition" / "examples").glob("*.jpg"))
    paths += sorted((root / "face_recognition" / "examples" / "knn_examples").glob("*/*/*.jpg"))
    paths += sorted((root / "dlib" / "examples" / "faces").glob("*.jpg"))
    return [(p.name, decode_image(p)) for p in paths]


def photo_timings(names: list[str], data: Path, rounds: int = 3) -> None:
    """ms per photo (best of ``rounds``, detectors alternating) and faces found, on photos larger than LFW's."""
    shots = photos(data)
    dets = {name: detector(name) for name in names}
    best = dict.fromkeys(names, float("inf"))
    counts: dict[str, int] = {}
    for det in dets.values():
        det.detect(shots[0][1])
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            counts[name] = sum(len(dets[name].detect(image)) for _, image in shots)
            best[name] = min(best[name], time.perf_counter() - started)
    pixels = np.mean([image.shape[0] * image.shape[1] for _, image in shots]) / 1e6
    print(f"\n{len(shots)} photos of face_recognition's and dlib's examples (mean {pixels:.2f} Mpixel), best of {rounds}:")
    for name in names:
        print(f"  {label(name):28} {1000 * best[name] / len(shots):7.1f} ms/photo  {best.get('hog', best[name]) / best[name]:5.2f}x hog"
              f"  faces found {counts[name]}")


def timed(detectors: dict[str, object], images: list[np.ndarray], batch: int, chunk: int = 50) -> tuple[dict, dict]:
    """Images/s of each detector and its faces per image. The detectors take turns on chunks of ``chunk`` images
    (order rotating), so a change in the machine's load during the run hits them alike."""
    seconds = dict.fromkeys(detectors, 0.0)
    found: dict[str, list] = {name: [] for name in detectors}
    for det in detectors.values():
        det.detect_many(images[:4])  # warm-up
    names = list(detectors)
    for turn, start in enumerate(range(0, len(images), chunk)):
        part = images[start : start + chunk]
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            det = detectors[name]
            started = time.perf_counter()
            if batch <= 1:
                faces = [det.detect(image) for image in part]
            else:
                faces = []
                for at in range(0, len(part), batch):
                    faces += det.detect_many(part[at : at + batch])
            seconds[name] += time.perf_counter() - started
            found[name] += faces
    return {name: len(images) / seconds[name] for name in names}, found


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def accuracy(pairs, images: dict[str, np.ndarray], found: dict[str, list], name: str) -> tuple[float, int]:
    from facelens.decide import verify_threshold
    from facelens.engine import models

    pipe = models(detector=name)
    vectors = {}
    for path, faces in found.items():
        if faces:
            vectors[path] = pipe.embedder.embed(images[path], faces[:1])[0]
    threshold = verify_threshold(pipe.model_id)
    correct = missing = 0
    for pair in pairs.pairs:
        if pair.a in vectors and pair.b in vectors:
            correct += int((float(vectors[pair.a] @ vectors[pair.b]) >= threshold) == pair.same)
        else:
            missing += 1
            correct += int(not pair.same)
    return correct / len(pairs.pairs), missing


def annotated_photos(data: Path) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    from facelens.io.image import decode_image

    folder = data / "identity" / "dlib" / "examples" / "faces"
    out = []
    for xml in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / xml).getroot().iter("image"):
            boxes = []
            for box in image.iter("box"):
                left, top, w, h = (float(box.get(k)) for k in ("left", "top", "width", "height"))
                boxes.append(np.array([left, top, left + w, top + h]))
            out.append((decode_image(folder / image.get("file")), boxes))
    out.append((decode_image(folder / "dogs.jpg"), []))
    return out


def thresholds(names: list[str], lfw_images: list[np.ndarray], data: Path) -> None:
    photos = annotated_photos(data)
    for name in names:
        det = detector(name, score_threshold=0.05)
        subject = []
        for image in lfw_images:
            h, w = image.shape[:2]
            centre = [f.score for f in det.detect(image) if f.box[0] < w / 2 < f.box[2] and f.box[1] < h / 2 < f.box[3]]
            subject.append(max(centre, default=0.0))
        subject = np.array(subject)
        false, true = [], []
        for image, boxes in photos:
            for face in det.detect(image):
                best = max((iou(face.box, b) for b in boxes), default=0.0)
                (true if best >= 0.3 else false).append(face.score) if best >= 0.3 or best < 0.1 else None
        false = np.sort(false)[::-1]
        print(f"\n{name}: LFW subject score quantiles (0, 0.1%, 1%, 5%): "
              f"{np.round(np.quantile(subject, [0, 0.001, 0.01, 0.05]), 3).tolist()}, no subject at 0.05: "
              f"{int((subject == 0).sum())}; annotated faces matched {len(true)}/{sum(len(b) for _, b in photos)}; "
              f"highest false-positive scores {np.round(false[:8], 3).tolist()}")
        for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            print(f"  threshold {t:.1f}: LFW subjects lost {int((subject < t).sum()):4d}, annotated faces kept "
                  f"{int((np.array(true) >= t).sum()):3d}, false positives {int((false >= t).sum()):3d}")


def fit_boxes(names: list[str], data: Path, devtest: set[str]) -> None:
    """The median map from each detector's own box to HOG's box of the same face (see OnnxDetector.dlib_box), on
    the LFW images that no DevTest pair uses (so DevTest accuracy stays a held-out figure)."""
    from facelens.detect import get_detector

    paths = [str(p) for p in sorted((data / "identity" / "lfw" / "lfw_deepfunneled").glob("*/*.jpg"))]
    images = load([p for p in paths if p not in devtest])
    hog = get_detector("hog")
    reference = [hog.detect(image) for image in images]
    for name in names:
        det = detector(name, native_boxes=True)
        rows = []
        for image, ref in zip(images, reference):
            found = det.detect(image)
            if ref and found:
                h, d = ref[0].box, found[0].box
                w, ht = d[2] - d[0], d[3] - d[1]
                rows.append([((h[0] + h[2]) - (d[0] + d[2])) / 2 / w, ((h[1] + h[3]) - (d[1] + d[3])) / 2 / ht,
                             (h[2] - h[0]) / w, (h[3] - h[1]) / ht])
        rows = np.array(rows)
        print(f"{name}: {len(rows)} of {len(images)} images; dlib_box (dx, dy, sw, sh) = "
              f"{tuple(round(float(v), 3) for v in np.median(rows, axis=0))}, interquartile ranges "
              f"{[round(float(v), 3) for v in np.quantile(rows, 0.75, axis=0) - np.quantile(rows, 0.25, axis=0)]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--detectors", default="hog,yunet,retinaface,centerface,centerface+hog")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--batch", type=int, default=16, help="images per detect_many call")
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--no-photos", action="store_true", help="skip the timings on larger photos")
    parser.add_argument("--thresholds", action="store_true", help="measure score thresholds instead")
    parser.add_argument("--fit-boxes", action="store_true", help="measure the map to dlib's box geometry instead")
    args = parser.parse_args()

    from facelens.evaluate.protocols import read_pairs

    lfw = args.data / "identity" / "lfw"
    pairs = read_pairs(lfw / "pairsDevTest.txt", lfw)
    paths = pairs.images()[: args.limit or None]
    images = load(paths)
    names = args.detectors.split(",")
    if args.thresholds:
        thresholds(names, images, args.data)
        return
    if args.fit_boxes:
        fit_boxes([n for n in names if n in ONNX], args.data, set(paths))
        return
    devtest = set(pairs.images())
    others = [str(p) for p in sorted((lfw / "lfw_deepfunneled").glob("*/*.jpg")) if str(p) not in devtest]
    other_images = load(others[: args.limit or None])
    print(f"{len(images)} LFW DevTest images (+ {len(other_images)} other LFW images for misses), cpu cores "
          f"{os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'detector':28} {'img/s':>7} {'img/s 1 thread':>14} {'batched img/s':>13} {'no face':>7} {'other':>5} "
          f"{'misses vs hog':>13} {'DevTest acc':>11}")
    onnx = [n for n in names if uses_onnx(n)]
    rate, found = timed({n: detector(n) for n in names}, images, 1)
    rate_1, _ = timed({n: detector(n, threads=1) for n in onnx}, images, 1)
    rate_b, batched = timed({n: detector(n) for n in onnx}, images, args.batch)
    for name in onnx:
        same = all(len(a) == len(b) and all(np.allclose(x.box, y.box, atol=0.05) for x, y in zip(a, b))
                   for a, b in zip(found[name], batched[name]))
        assert same, f"{name}: detect_many differs from detect"
    found_other = {name: detector(name).detect_many(other_images) for name in names}
    reference = found.get("hog")
    for name in names:
        none = sum(1 for f in found[name] if not f)
        none_other = sum(1 for f in found_other[name] if not f)
        misses = ""
        if reference is not None:
            pairs_found = zip(reference + found_other["hog"], found[name] + found_other[name])
            misses = str(sum(1 for r, f in pairs_found if r and not f))
        acc = ""
        if not args.no_accuracy:
            value, _ = accuracy(pairs, dict(zip(paths, images)), dict(zip(paths, found[name])), name.partition("@")[0])
            acc = f"{value:.4f}"
        print(f"{label(name):28} {rate[name]:7.1f} {rate_1.get(name, rate[name]):14.1f} {rate_b.get(name, rate[name]):13.1f} "
              f"{none:7d} {none_other:5d} {misses:>13} {acc:>11}", flush=True)
    for name in names:
        missed = [p for p, f in zip(paths + others, found[name] + found_other[name]) if not f]
        if missed:
            print(f"  {name} finds no face in: {', '.join(Path(p).name for p in missed[:12])}")
    if not args.no_photos:
        photo_timings(names, args.data)


if __name__ == "__main__":
    main()
