"""Benchmark: facial analysis speed and accuracy.

1. Expression accuracy on fer2013_sample and ckplus48 (contempt excluded) and faces/s for both runtimes
   (onnxruntime graph rebuilt from the HDF5, and LiteRT on the quantized TFLite twin).
2. faces/s of each head (expression, age/gender, quality) and of all together on detected faces in photos.
3. The cost of analysis relative to recognition alone (decode + detect + embed) on the same images.
Optional: ``--calibrate-quality`` prints the LFW percentiles behind quality.py's constants, ``--crop-scale``
the expression accuracy per crop scale on FER2013/CK+ faces re-detected with HOG (expression.CROP_SCALE).

    python benchmarks/analysis.py [--data ../shared/data] [--repeat 3] [--calibrate-quality] [--crop-scale]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

CK_TO_FER = {"anger": "angry", "sadness": "sad"}


def _timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def expression_sets(data: Path) -> dict:
    from facelens.analyze.expression import whole_crop

    out = {}
    for name, pattern in (("fer2013_sample", "*/*.jpg"), ("ckplus48", "*/*.png")):
        files = [f for f in sorted((data / "expression" / name).glob(pattern)) if f.parent.name != "contempt"]
        labels = np.array([CK_TO_FER.get(f.parent.name, f.parent.name) for f in files])
        out[name] = (labels, [whole_crop(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)) for f in files])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calibrate-quality", action="store_true")
    parser.add_argument("--crop-scale", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("FACELENS_MODEL_DIR", str(args.data.parent / "models"))

    from facelens.analyze.age_gender import get_age_gender_model
    from facelens.analyze.api import Analyzer
    from facelens.analyze.expression import EXPRESSIONS, face_crop, get_expression_model
    from facelens.analyze.quality import assess_quality
    import facelens
    from facelens.engine import models
    from facelens.result import Faces

    sets = expression_sets(args.data)
    print("== expression (whole crops, flip-averaged) ==")
    speeds = {}
    for runtime in ("onnxruntime", "litert"):
        try:
            model = get_expression_model("mini_xception", runtime)
            model.probabilities(sets["fer2013_sample"][1][:2])
        except Exception as exc:  # noqa: BLE001  (litert is optional; report why it did not run)
            print(f"{runtime}: unavailable ({exc})")
            continue
        for name, (labels, crops) in sets.items():
            probs = model.probabilities(crops)
            acc = (np.array(EXPRESSIONS)[probs.argmax(1)] == labels).mean()
            print(f"{runtime:12s} {name:15s} accuracy {acc:.3f} (n={len(labels)})")
        crops = sets["ckplus48"][1]
        batch = _timed(lambda m=model, c=crops: m.probabilities(c), args.repeat)
        single = _timed(lambda m=model, cs=crops: [m.probabilities([c]) for c in cs[:200]], args.repeat)
        speeds[runtime] = (len(crops) / batch, 200 / single)
        print(f"{runtime:12s} faces/s batched {len(crops) / batch:.0f}, one at a time {200 / single:.0f}")
    if len(speeds) == 2:
        print(
            f"onnxruntime / litert speed: batched {speeds['onnxruntime'][0] / speeds['litert'][0]:.2f}x, "
            f"one at a time {speeds['onnxruntime'][1] / speeds['litert'][1]:.2f}x"
        )

    print("== heads on detected faces (face_recognition examples + 40 LFW images) ==")
    pipeline = models()
    paths = sorted((args.data / "identity" / "face_recognition" / "examples").glob("*.jpg"))
    paths += sorted((args.data / "identity" / "lfw" / "lfw_deepfunneled").glob("*/*.jpg"))[:40]
    images = [pipeline.decode(p) for p in paths]
    detections = [pipeline.detector.detect(img) for img in images]
    n = sum(len(d) for d in detections)
    expr = get_expression_model("mini_xception")
    ag = get_age_gender_model()
    heads = {
        "expression": lambda: [expr.predict(i, d) for i, d in zip(images, detections) if d],
        "age_gender": lambda: [ag.predict(i, d) for i, d in zip(images, detections) if d],
        "quality": lambda: [[assess_quality(i, x) for x in d] for i, d in zip(images, detections)],
    }
    analyzer = Analyzer()  # the engine's analyze task: every head once over all faces
    heads["all three"] = lambda: analyzer.fill([i for i, d in zip(images, detections) if d],
                                               [Faces.from_detections(d) for d in detections if d])
    costs = {}
    for name, fn in heads.items():
        fn()
        costs[name] = _timed(fn, args.repeat)
        print(f"{name:12s} {n / costs[name]:7.1f} faces/s  ({1000 * costs[name] / n:.2f} ms/face)")
    recognition = _timed(lambda: [facelens.embed(p) for p in paths], 1)  # one image at a time, in-process
    print(f"recognition alone (decode+detect+embed): {len(paths) / recognition:.2f} images/s, {n} faces")
    print(
        f"analysis / recognition cost on the same images: {costs['all three'] / recognition:.3f} "
        f"(recognition + analysis = {1 + costs['all three'] / recognition:.3f}x recognition alone)"
    )

    if args.calibrate_quality:
        import random

        from facelens.align import similarity_crop
        from facelens.analyze.quality import measure_crop

        files = sorted((args.data / "identity" / "lfw" / "lfw_deepfunneled").glob("*/*.jpg"))
        random.Random(0).shuffle(files)
        sharp, bright = [], []
        for f in files[:150]:
            image = pipeline.decode(f)
            found = pipeline.detector.detect(image)
            if found:
                gray = cv2.cvtColor(similarity_crop(image, found[0].landmarks, 112), cv2.COLOR_RGB2GRAY)
                s, b, _ = measure_crop(gray)
                sharp.append(s)
                bright.append(b)
        print(f"== quality calibration on {len(sharp)} LFW faces ==")
        print("sharpness p10/p50/p90", np.percentile(sharp, [10, 50, 90]).round(1))
        print("brightness p2/p50/p98", np.percentile(bright, [2, 50, 98]).round(1))

    if args.crop_scale:
        from facelens.analyze.expression import whole_crop

        rows = []
        for name, pattern, step in (("fer2013_sample", "*/*.jpg", 1), ("ckplus48", "*/*.png", 3)):
            for f in sorted((args.data / "expression" / name).glob(pattern))[::step]:
                if f.parent.name == "contempt":
                    continue
                big = cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (192, 192), interpolation=cv2.INTER_CUBIC)
                rgb = cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)
                found = pipeline.detector.detect(rgb)
                if found:
                    rows.append((rgb, found[0], CK_TO_FER.get(f.parent.name, f.parent.name)))
        labels = np.array([r[2] for r in rows])
        print(f"== expression crop scale on {len(rows)} re-detected faces ==")
        acc = (np.array(EXPRESSIONS)[expr.probabilities([whole_crop(r[0]) for r in rows]).argmax(1)] == labels).mean()
        print(f"whole original crop: {acc:.3f}")
        for scale in (1.0, 1.1, 1.2, 1.3, 1.5):
            probs = expr.probabilities([face_crop(r[0], r[1], scale=scale) for r in rows])
            print(f"scale {scale}: {(np.array(EXPRESSIONS)[probs.argmax(1)] == labels).mean():.3f}")


if __name__ == "__main__":
    main()
