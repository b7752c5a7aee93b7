"""Throughput and accuracy of `facelens embed` against the PyPI face_recognition package, same images, one run.

    pip install --no-deps face_recognition==1.3.0   # benchmark only (same dlib models; its dlib dependency is dlib-bin)
    python benchmarks/pipeline.py [--limit N] [--workers 2] [--one-shot RUNS] [--no-throughput]

One-shot start-up: the whole process of `facelens verify A B` against a face_recognition script doing the same
(load both images, encode, compare), run alternately RUNS times each (default 5); the median wall times and their
ratio are printed (goal: facelens <= 0.8x).

Throughput: both pipelines embed the images of the LFW View-1 DevTest pairs (or the first N of them); the script prints
images/s for each, the ratio, images where one finds a face and the other does not, and each pipeline's
accuracy on the DevTest pairs (pairs with a missing face count as errors; each at its own threshold:
facelens' measured default, face_recognition's documented distance 0.6).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from facelens.batch import run_batch
from facelens.decide import verify_threshold


def devtest(lfw: Path) -> list[tuple[Path, Path, int]]:
    def img(name: str, n: str) -> Path:
        return lfw / "lfw_deepfunneled" / name / f"{name}_{int(n):04d}.jpg"

    pairs = []
    for line in (lfw / "pairsDevTest.txt").read_text().split("\n")[1:]:
        p = line.split()
        if len(p) == 3:
            pairs.append((img(p[0], p[1]), img(p[0], p[2]), 1))
        elif len(p) == 4:
            pairs.append((img(p[0], p[1]), img(p[2], p[3]), 0))
    return pairs


def accuracy(pairs, vectors: dict, same_fn) -> float:
    correct = 0
    for a, b, same in pairs:
        if a in vectors and b in vectors:
            correct += int(same_fn(vectors[a], vectors[b]) == bool(same))
        else:
            correct += int(not same)  # no face: no match
    return correct / len(pairs)


FACE_RECOGNITION_VERIFY = """
import sys
import face_recognition
a = face_recognition.face_encodings(face_recognition.load_image_file(sys.argv[1]))
b = face_recognition.face_encodings(face_recognition.load_image_file(sys.argv[2]))
match = bool(a and b and face_recognition.compare_faces([a[0]], b[0])[0])
print("match" if match else "no match")
sys.exit(0 if match else 1)
"""


def one_shot(a: Path, b: Path, runs: int) -> None:
    """Whole-process wall time of one verification, each tool started fresh, alternating which goes first."""
    exe = shutil.which("facelens", path=str(Path(sys.executable).parent))
    ours_cmd = [exe] if exe else [sys.executable, "-c", "from facelens.cli import main; main()"]
    ours_cmd += ["verify", str(a), str(b)]
    theirs_cmd = [sys.executable, "-c", FACE_RECOGNITION_VERIFY, str(a), str(b)]
    times: dict[str, list[float]] = {"facelens": [], "face_recognition": []}
    for i in range(runs):
        order = [("facelens", ours_cmd), ("face_recognition", theirs_cmd)]
        for name, cmd in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"{name} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    ours, theirs = statistics.median(times["facelens"]), statistics.median(times["face_recognition"])
    print(f"one-shot verify ({runs} alternating runs each, median wall time of the whole process):")
    print(f"  facelens verify A B:      {ours:6.3f} s  (runs {', '.join(f'{t:.2f}' for t in times['facelens'])})")
    print(f"  face_recognition script:  {theirs:6.3f} s  (runs {', '.join(f'{t:.2f}' for t in times['face_recognition'])})")
    print(f"  ratio facelens / face_recognition: {ours / theirs:.2f}x (goal <= 0.80x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("FACELENS_TEST_DATA", "../shared/data"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all DevTest images)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--one-shot", type=int, default=5, help="runs of each one-shot verify (0 = skip)")
    parser.add_argument("--no-throughput", action="store_true", help="only the one-shot comparison")
    args = parser.parse_args()
    try:
        import face_recognition
    except ImportError:
        sys.exit("install the reference first: pip install --no-deps face_recognition==1.3.0")
    lfw = Path(args.data) / "identity" / "lfw"
    pairs = devtest(lfw)
    if args.one_shot:
        one_shot(pairs[0][0], pairs[0][1], args.one_shot)
    if args.no_throughput:
        return
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    if args.limit:
        images = images[: args.limit]
        keep = set(images)
        pairs = [p for p in pairs if p[0] in keep and p[1] in keep]

    start = time.perf_counter()
    ours = {}
    for item in run_batch([str(p) for p in images], workers=args.workers, largest_only=True):
        if item.faces:
            ours[Path(item.source)] = np.array(item.faces[0]["embedding"], np.float32)
    ours_s = time.perf_counter() - start

    start = time.perf_counter()
    theirs = {}
    for path in images:
        image = face_recognition.load_image_file(str(path))
        encodings = face_recognition.face_encodings(image)
        if encodings:
            theirs[path] = encodings[0]
    theirs_s = time.perf_counter() - start

    n = len(images)
    threshold = verify_threshold("dlib_resnet_v1")
    acc_ours = accuracy(pairs, ours, lambda x, y: float(x @ y) >= threshold)
    acc_theirs = accuracy(pairs, theirs, lambda x, y: float(np.linalg.norm(x - y)) <= 0.6)
    only_theirs = sorted(str(p) for p in theirs if p not in ours)
    print(f"images: {n}, pairs: {len(pairs)}, workers: {args.workers}")
    print(f"facelens embed:    {n / ours_s:7.2f} images/s  faces found {len(ours)}/{n}  DevTest accuracy {acc_ours:.4f}")
    print(f"face_recognition:  {n / theirs_s:7.2f} images/s  faces found {len(theirs)}/{n}  DevTest accuracy {acc_theirs:.4f}")
    print(f"throughput ratio facelens / face_recognition: {theirs_s / ours_s:.2f}x")
    print(f"images where face_recognition finds a face and facelens does not: {len(only_theirs)} {only_theirs[:5]}")


if __name__ == "__main__":
    main()
