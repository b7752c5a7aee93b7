"""Throughput and accuracy of `facelens embed` against the PyPI face_recognition package, same images, one run;
then images/s of the engine's enrol, identify and eval-verify paths against its embed path on the same images.

    pip install --no-deps face_recognition==1.3.0   # benchmark only (same dlib models; its dlib dependency is dlib-bin)
    python benchmarks/pipeline.py [--limit N] [--workers 2] [--stages 100] [--batch-sizes 1,8,16,32,64]
                                  [--one-shot RUNS] [--no-throughput] [--skip-reference] [--rounds 2]
                                  [--no-engine-paths] [--parts 4] [--detector NAME]

First, per stage (one process): milliseconds per image of decode, detect, align (dlib chips) and embed, the
embedding run by dlib itself (one image's faces per call, facelens' old default) and by onnxruntime (per image,
and in batches across images), alternating which goes first, plus embedding images/s of both and their ratio,
and the default embedder's own align and embed (SFace: ArcFace-template crops on the detector's landmarks).
``--batch-sizes`` also times the ONNX embedder at several batch sizes (how DEFAULT_BATCH_SIZE was chosen).

One-shot start-up: the whole process of `facelens verify A B` against a face_recognition script doing the same
(load both images, encode, compare), run alternately RUNS times each (default 5); the median wall times and their
ratio are printed (goal: facelens <= 0.8x).

Throughput: both pipelines embed the images of the LFW View-1 DevTest pairs (or the first N of them), taking turns
on ``--parts`` slices of them (order alternating, so that load from other jobs hits both); the script prints
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
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from facelens.decide import verify_threshold
from facelens.embed import DEFAULT_EMBEDDER, DEFAULT_MODEL_ID
from facelens.detect import DEFAULT_DETECTOR
from facelens.engine import FaceAnalyzer


def devtest(lfw: Path) -> list[tuple[Path, Path, int]]:
    """The LFW View-1 DevTest pairs as (image a, image b, same person)."""
    from facelens.evaluate.protocols import read_pairs

    return [(Path(p.a), Path(p.b), int(p.same)) for p in read_pairs(lfw / "pairsDevTest.txt", lfw).pairs]


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
    gallery.add_embeddings([Path(p).parent.name for p in vectors], np.stack(list(vectors.values())), model_id=DEFAULT_MODEL_ID)
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

        emb = embed_images(paths, workers=workers, into=EmbeddingSet(DEFAULT_MODEL_ID))
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


def _ms(seconds: float, n: int) -> str:
    return f"{1000 * seconds / max(n, 1):8.2f} ms"


def stage_timings(images: list[Path], batch_sizes: list[int], detector: str) -> None:
    """Per-stage milliseconds per image, and dlib vs onnxruntime embedding, on the same chips in one process."""
    from facelens.embed import get_embedder
    from facelens.engine import Models

    pipe = Models(detector=detector)  # its own detector, not the process's shared one
    dlib_runtime, onnx_runtime = get_embedder("dlib"), get_embedder("dlib_onnx")
    default = get_embedder(DEFAULT_EMBEDDER)
    for embedder in (onnx_runtime, default):
        embedder.embed(np.zeros((64, 64, 3), np.uint8), [np.array([8, 8, 56, 56], np.float32)])  # sessions, not time
    spent = dict.fromkeys(("decode", "detect", "align", "embed_dlib", "embed_onnx", "align_default", "embed_default"), 0.0)
    all_chips: list[np.ndarray] = []
    for i, path in enumerate(images):
        t0 = time.perf_counter()
        image = pipe.decode(str(path))
        t1 = time.perf_counter()
        faces = pipe.detector.detect(image)
        t2 = time.perf_counter()
        chips = onnx_runtime.crops(image, [f.box for f in faces])
        t3 = time.perf_counter()
        spent["decode"] += t1 - t0
        spent["detect"] += t2 - t1
        spent["align"] += t3 - t2
        runtimes = [("embed_dlib", dlib_runtime), ("embed_onnx", onnx_runtime)]
        for name, embedder in runtimes if i % 2 == 0 else runtimes[::-1]:
            start = time.perf_counter()
            embedder.embed_crops(chips)
            spent[name] += time.perf_counter() - start
        all_chips += chips
        start = time.perf_counter()
        crops = default.crops(image, faces)
        middle = time.perf_counter()
        default.embed_crops(crops)
        spent["align_default"] += middle - start
        spent["embed_default"] += time.perf_counter() - middle
    n, faces = len(images), len(all_chips)
    start = time.perf_counter()
    onnx_runtime.embed_crops(all_chips)  # batches across images, as a batch job sends them
    batched = time.perf_counter() - start
    print(f"per stage ({detector}), {n} images, {faces} faces (one process, {os.cpu_count()} cores; timings under whatever else "
          "runs on this machine)")
    for name in ("decode", "detect", "align"):
        print(f"  {name:<28}{_ms(spent[name], n)} / image")
    print(f"  {'embed, dlib runtime':<28}{_ms(spent['embed_dlib'], n)} / image  (one image's faces per call)")
    print(f"  {'embed, onnx runtime':<28}{_ms(spent['embed_onnx'], n)} / image  (one image's faces per call)")
    print(f"  {'embed, onnx batched':<28}{_ms(batched, n)} / image  (batches of {onnx_runtime.batch_size} across images)")
    print(f"  {'align, ' + DEFAULT_EMBEDDER + ' (default)':<28}{_ms(spent['align_default'], n)} / image")
    print(f"  {'embed, ' + DEFAULT_EMBEDDER + ' (default)':<28}{_ms(spent['embed_default'], n)} / image  (one image's faces per call)")
    print(f"embedding images/s: dlib {n / spent['embed_dlib']:.1f}, onnx {n / spent['embed_onnx']:.1f} per image, "
          f"{n / batched:.1f} batched; ratio onnx/dlib {spent['embed_dlib'] / spent['embed_onnx']:.2f}x per image, "
          f"{spent['embed_dlib'] / batched:.2f}x batched")
    if batch_sizes and all_chips:
        from facelens.embed.dlib_onnx import DlibOnnxEmbedder

        chips = (all_chips * (1 + 128 // len(all_chips)))[:128]
        embedders = {size: DlibOnnxEmbedder(batch_size=size) for size in batch_sizes}
        for size, embedder in embedders.items():
            embedder.embed_crops(chips[:size])  # warm-up
        best = dict.fromkeys(batch_sizes, 0.0)
        for round_ in range(3):  # alternating order, best of three: other load on the machine only slows a run down
            for size in batch_sizes if round_ % 2 == 0 else batch_sizes[::-1]:
                start = time.perf_counter()
                embedders[size].embed_crops(chips)
                best[size] = max(best[size], len(chips) / (time.perf_counter() - start))
        print(f"onnx chips/s by batch size ({len(chips)} chips, best of 3): "
              + ", ".join(f"{size}: {rate:.1f}" for size, rate in best.items()))


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
    import resource

    subprocess.run(ours_cmd, capture_output=True)  # the first run ever fills the user cache (hashes, HOG copy)
    times: dict[str, list[float]] = {"facelens": [], "face_recognition": []}
    cpu: dict[str, list[float]] = {"facelens": [], "face_recognition": []}
    for i in range(runs):
        order = [("facelens", ours_cmd), ("face_recognition", theirs_cmd)]
        for name, cmd in order if i % 2 == 0 else order[::-1]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                sys.exit(f"{name} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    ours, theirs = statistics.median(times["facelens"]), statistics.median(times["face_recognition"])
    ours_cpu, theirs_cpu = statistics.median(cpu["facelens"]), statistics.median(cpu["face_recognition"])
    print(f"one-shot verify ({runs} alternating runs each, median wall and CPU time of the whole process; on a "
          "shared machine the wall time inflates, the CPU time much less):")
    print(f"  facelens verify A B:      {ours:6.3f} s, {ours_cpu:5.2f} CPU s  "
          f"(runs {', '.join(f'{t:.2f}' for t in times['facelens'])})")
    print(f"  face_recognition script:  {theirs:6.3f} s, {theirs_cpu:5.2f} CPU s  "
          f"(runs {', '.join(f'{t:.2f}' for t in times['face_recognition'])})")
    print(f"  ratio facelens / face_recognition: {ours / theirs:.2f}x wall, {ours_cpu / theirs_cpu:.2f}x CPU "
          "(goal <= 0.80x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("FACELENS_TEST_DATA", "../shared/data"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all DevTest images)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-reference", action="store_true", help="only the engine paths")
    parser.add_argument("--rounds", type=int, default=2, help="timings per engine path (alternating order)")
    parser.add_argument("--stages", type=int, default=100, help="images for the per-stage timings (0 = skip them)")
    parser.add_argument("--batch-sizes", default="", help="comma-separated ONNX batch sizes to time, e.g. 1,8,16,32,64")
    parser.add_argument("--stages-only", action="store_true", help="stop after the per-stage timings")
    parser.add_argument("--one-shot", type=int, default=5, help="runs of each one-shot verify (0 = skip)")
    parser.add_argument("--no-throughput", action="store_true", help="only the one-shot comparison")
    parser.add_argument("--no-engine-paths", action="store_true", help="skip the enrol / identify / eval timings")
    parser.add_argument("--parts", type=int, default=4, help="slices the reference comparison alternates on")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="facelens' detector (default: the default's)")
    args = parser.parse_args()
    lfw = Path(args.data) / "identity" / "lfw"
    pairs = devtest(lfw)
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    if args.stages:
        stage_timings(images[: args.stages], [int(b) for b in args.batch_sizes.split(",") if b], args.detector)
        if args.stages_only:
            return
    if args.one_shot:
        one_shot(pairs[0][0], pairs[0][1], args.one_shot)
    if args.no_throughput:
        return
    if args.limit:
        images = images[: args.limit]
        keep = set(images)
        pairs = [p for p in pairs if p[0] in keep and p[1] in keep]
    if not args.no_engine_paths:
        engine_paths(images, pairs, args.workers, args.rounds)
    if args.skip_reference:
        return
    reference_comparison(images, pairs, args.workers, args.parts, args.detector)


def reference_comparison(images: list[Path], pairs: list, workers: int, parts: int, detector: str) -> None:
    """facelens embed against face_recognition on the same images: the images are cut into ``parts`` slices and
    the two take turns on each (order alternating), so that a change in the machine's load hits both alike."""
    try:
        import face_recognition
    except ImportError:
        sys.exit("install the reference first: pip install --no-deps face_recognition==1.3.0")
    analyzer = FaceAnalyzer(select="largest", workers=workers, detector=detector)
    list(analyzer.run([str(p) for p in images[: 4 * workers]]))  # the pool started, the models loaded

    def ours(part: list[Path]) -> dict:
        return {Path(r.source): r.faces.embedding[0] for r in analyzer.run([str(p) for p in part]) if len(r.faces)}

    def theirs(part: list[Path]) -> dict:
        out = {}
        for path in part:
            encodings = face_recognition.face_encodings(face_recognition.load_image_file(str(path)))
            if encodings:
                out[path] = encodings[0]
        return out

    seconds = {"ours": 0.0, "theirs": 0.0}
    vectors: dict[str, dict] = {"ours": {}, "theirs": {}}
    size = -(-len(images) // parts)
    for turn, start in enumerate(range(0, len(images), size)):
        part = images[start : start + size]
        for name, run in [("ours", ours), ("theirs", theirs)][:: 1 if turn % 2 == 0 else -1]:
            began = time.perf_counter()
            vectors[name].update(run(part))
            seconds[name] += time.perf_counter() - began
    n = len(images)
    threshold = verify_threshold(DEFAULT_MODEL_ID)
    acc_ours = accuracy(pairs, vectors["ours"], lambda x, y: float(x @ y) >= threshold)
    acc_theirs = accuracy(pairs, vectors["theirs"], lambda x, y: float(np.linalg.norm(x - y)) <= 0.6)
    only_theirs = sorted(str(p) for p in vectors["theirs"] if p not in vectors["ours"])
    print(f"images: {n}, pairs: {len(pairs)}, workers: {workers}, detector {detector}, {parts} alternating "
          f"slices, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"facelens embed:    {n / seconds['ours']:7.2f} images/s  faces found {len(vectors['ours'])}/{n}  "
          f"DevTest accuracy {acc_ours:.4f}")
    print(f"face_recognition:  {n / seconds['theirs']:7.2f} images/s  faces found {len(vectors['theirs'])}/{n}  "
          f"DevTest accuracy {acc_theirs:.4f}")
    print(f"throughput ratio facelens / face_recognition: {seconds['theirs'] / seconds['ours']:.2f}x")
    print(f"images where face_recognition finds a face and facelens does not: {len(only_theirs)} {only_theirs[:5]}")


if __name__ == "__main__":
    main()
