"""Liveness throughput: faces/s of each passive model and of recognition with and without the liveness check.

For each detector (hog, cnn, yunet): recognition alone = detect + embed (dlib ResNet) per image; with liveness =
the same plus ``LivenessChecker.check_many`` (default: MiniFASNet ensemble). Prints faces/s and the overhead
ratio (with / without), as the issue asks. Also the passive models on their own (crops from given boxes) and the
frequency features. Data: spoof/dtruong46me_fas_crops (336×336 face crops).

    python benchmarks/liveness.py [--images 60] [--detectors hog,yunet,cnn] [--cnn-images 8]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("FACELENS_MODEL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "models"))
os.environ.setdefault("FACELENS_OFFLINE", "1")


def _timed(fn, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data",
        default=str(Path(os.environ["FACELENS_MODEL_DIR"]).parent / "data" / "spoof" / "dtruong46me_fas_crops"),
    )
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument(
        "--detectors", default="hog,yunet", help="add cnn for dlib MMOD (slow on CPU: see --cnn-images)"
    )
    parser.add_argument("--cnn-images", type=int, default=8)
    args = parser.parse_args()

    from facelens.io.image import decode_image
    from facelens.liveness.checker import LivenessChecker
    from facelens.liveness.dataset import labelled_images
    from facelens.liveness.frequency import feature_matrix
    from facelens.engine import models

    paths = [p for p, _ in labelled_images(args.data)]
    step = max(1, len(paths) // args.images)
    images = [decode_image(p) for p in paths[::step][: args.images]]
    checkers = {name: LivenessChecker(name) for name in ("minifasnet", "minifas_celeba128")}

    print(f"{len(images)} images from {args.data}; {os.cpu_count()} CPU(s)")
    base = models(detector="hog")
    faces = [(img, base.detector.detect(img)) for img in images]
    faces = [(img, f) for img, f in faces if f]
    n = sum(len(f) for _, f in faces)
    for name, checker in checkers.items():
        checker.check_many(*faces[0])  # load
        t = _timed(lambda c=checker: [c.check_many(img, f) for img, f in faces])
        print(f"passive {name:18s}: {n / t:8.1f} faces/s ({1000 * t / n:.2f} ms/face)")
    t = _timed(lambda: [feature_matrix(img, [d.box for d in f]) for img, f in faces])
    print(f"frequency features        : {n / t:8.1f} faces/s ({1000 * t / n:.2f} ms/face)")

    checker = checkers["minifasnet"]
    for det in args.detectors.split(","):
        pipe = models(detector=det)
        pipe.embedder.embed(images[0], pipe.detector.detect(images[0]))  # load models
        subset = images[: args.cnn_images] if det == "cnn" else images
        count = 0

        def recognition(with_liveness: bool, pipe=pipe, subset=subset) -> None:
            nonlocal count
            count = 0
            for img in subset:
                dets = pipe.detector.detect(img)
                pipe.embedder.embed(img, dets)
                if with_liveness:
                    checker.check_many(img, dets)
                count += len(dets)

        t_rec = _timed(lambda: recognition(False))
        t_live = _timed(lambda: recognition(True))
        print(
            f"{det:5s}: recognition {count / t_rec:7.1f} faces/s, + liveness {count / t_live:7.1f} faces/s, "
            f"overhead x{t_live / t_rec:.3f} ({1000 * (t_live - t_rec) / max(count, 1):.2f} ms/face)"
        )


if __name__ == "__main__":
    main()
