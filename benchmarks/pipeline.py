"""Throughput and accuracy of `facelens embed` against the PyPI face_recognition package, same images, one run;
then images/s of the engine's enrol, identify and eval-verify paths against its embed path on the same images.

    pip install --no-deps face_recognition==1.3.0   # benchmark only (same dlib models; its dlib dependency is dlib-bin)
    python benchmarks/pipeline.py [--limit N] [--workers 2] [--skip-reference] [--rounds 2]

Both pipelines embed the images of the LFW View-1 DevTest pairs (or the first N of them); the script prints
images/s for each, the ratio, images where one finds a face and the other does not, and each pipeline's
accuracy on the DevTest pairs (pairs with a missing face count as errors; each at its own threshold:
facelens' measured default, face_recognition's documented distance 0.6).

The engine paths (pool warmed first, each path timed ``--rounds`` times in alternating order, best kept):
``embed`` (largest face per image, what `facelens embed --largest` runs), ``enrol`` (``facelens.enroll_people``
into a fresh folder gallery, one person per LFW identity, duplicate check and transactions included),
``identify`` (every face of every image named against that gallery) and ``eval verify`` (``embed_images`` +
pair scores). Goal: each within 10 % of embed (identify is compared with embed of every face, as it embeds all).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from facelens.decide import verify_threshold
from facelens.engine import FaceAnalyzer


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


def engine_paths(images: list[Path], pairs: list, workers: int, rounds: int) -> None:
    """images/s of enrol, identify and eval verify against embed, same images, same pool, alternating order."""
    import tempfile

    import facelens
    from facelens.evaluate.embeddings import embed_images

    paths = [str(p) for p in images]
    people: dict[str, list[str]] = {}
    for p in images:
        people.setdefault(p.parent.name, []).append(str(p))
    list(FaceAnalyzer(select="largest", workers=workers).run(paths[: 4 * workers]))  # start the pool, load the models
    tmp = Path(tempfile.mkdtemp(prefix="facelens-bench-"))
    gallery = facelens.open_gallery(tmp / "probe-gallery")
    vectors = {r.source: r.faces.embedding[0] for r in FaceAnalyzer(select="largest", workers=workers).run(paths)
               if len(r.faces)}
    gallery.add_embeddings([Path(p).parent.name for p in vectors], np.stack(list(vectors.values())), model_id="dlib_resnet_v1")
    counter = iter(range(10_000))

    def embed_largest() -> None:
        list(FaceAnalyzer(select="largest", workers=workers).run(paths))

    def embed_all() -> None:
        list(FaceAnalyzer(workers=workers).run(paths))

    def enrol() -> None:
        with facelens.open_gallery(tmp / f"enrol-{next(counter)}") as store:
            facelens.enroll_people(store, people, workers=workers)

    def identify() -> None:
        list(FaceAnalyzer(tasks=("identify",), gallery=gallery, workers=workers).run(paths))

    def eval_verify() -> None:
        from facelens.evaluate.embeddings import EmbeddingSet

        emb = embed_images(paths, workers=workers, into=EmbeddingSet("dlib_resnet_v1"))
        emb.pair_scores([(str(a), str(b)) for a, b, _ in pairs])

    jobs = {"embed (largest)": embed_largest, "embed (all faces)": embed_all, "enrol": enrol,
            "identify": identify, "eval verify": eval_verify}
    best = {name: float("inf") for name in jobs}
    for round_ in range(rounds):
        for name in (list(jobs) if round_ % 2 == 0 else list(jobs)[::-1]):
            start = time.perf_counter()
            jobs[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    gallery.close()
    n = len(paths)
    print(f"engine paths on {n} images, {workers} workers, best of {rounds} (alternating order; shared machine):")
    for name, seconds in best.items():
        ref = best["embed (all faces)" if name == "identify" else "embed (largest)"]
        print(f"  {name:18s} {n / seconds:7.2f} images/s   {ref / seconds:5.2f}x of embed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("FACELENS_TEST_DATA", "../shared/data"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all DevTest images)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-reference", action="store_true", help="only the engine paths")
    parser.add_argument("--rounds", type=int, default=2, help="timings per engine path (alternating order)")
    args = parser.parse_args()
    lfw = Path(args.data) / "identity" / "lfw"
    pairs = devtest(lfw)
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    if args.limit:
        images = images[: args.limit]
        keep = set(images)
        pairs = [p for p in pairs if p[0] in keep and p[1] in keep]
    engine_paths(images, pairs, args.workers, args.rounds)
    if args.skip_reference:
        return
    try:
        import face_recognition
    except ImportError:
        sys.exit("install the reference first: pip install --no-deps face_recognition==1.3.0")

    start = time.perf_counter()
    ours = {}
    for result in FaceAnalyzer(select="largest", workers=args.workers).run([str(p) for p in images]):
        if len(result.faces):
            ours[Path(result.source)] = result.faces.embedding[0]
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
