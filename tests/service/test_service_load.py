"""A bounded load test on loopback: 100 identify requests to warm up, then 200 more, 8 at a time, against a 1,000-person
gallery of real LFW embeddings, through a real uvicorn server. Zero errors, every probe named as itself, the process's
memory flat within 5% across the measured 200 (the server runs in this process), p50/p99 printed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

WARMUP = 100
REQUESTS = 200
CONCURRENCY = 8
PEOPLE = 1000


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def test_identify_under_load(live_server, service, devtest_embeddings):
    from facelens.gallery import open_gallery

    settings, token = service[1], service[3]
    paths = sorted(devtest_embeddings.vectors)[:PEOPLE]
    assert len(paths) == PEOPLE
    names = [Path(p).stem for p in paths]  # one gallery person per LFW image
    with open_gallery(settings.gallery, collection="load") as gallery:
        gallery.add_embeddings(names, np.stack([devtest_embeddings.vectors[p] for p in paths]))
        assert gallery.stats()["people"] == PEOPLE
    probes = [(paths[i], names[i], Path(paths[i]).read_bytes()) for i in range(0, PEOPLE, PEOPLE // 40)]

    def one(i: int, client: httpx.Client) -> tuple[float, int, str | None, str]:
        _, name, data = probes[i % len(probes)]
        start = time.perf_counter()
        response = client.post("/v1/identify", params={"gallery": "load", "k": 1},
                               files={"image": ("probe.jpg", data, "image/jpeg")})
        elapsed = time.perf_counter() - start
        faces = response.json().get("faces") if response.status_code == 200 else None
        found = faces[0]["identity"]["candidates"][0]["name"] if faces else None
        return elapsed, response.status_code, found, name

    with httpx.Client(base_url=live_server, headers={"X-API-Key": token}, timeout=60,
                      limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            warm = list(pool.map(lambda i: one(i, client), range(WARMUP)))  # index, buffers, caches settle
            rss_before = _rss_bytes()
            started = time.perf_counter()
            results = list(pool.map(lambda i: one(i, client), range(REQUESTS)))
            wall = time.perf_counter() - started
            rss_after = _rss_bytes()

    latencies = np.array([r[0] for r in results]) * 1000
    errors = [r for r in results if r[1] != 200]
    wrong = [r for r in results if r[1] == 200 and r[2] != r[3]]
    print(f"\nload: {REQUESTS} identify requests, {CONCURRENCY} concurrent, {PEOPLE}-person gallery: "
          f"{REQUESTS / wall:.1f} req/s, p50 {np.percentile(latencies, 50):.0f} ms, "
          f"p99 {np.percentile(latencies, 99):.0f} ms, errors {len(errors)}, "
          f"memory {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MB")
    assert not [r for r in warm if r[1] != 200], warm[:3]
    assert not errors, errors[:3]
    assert rss_after <= rss_before * 1.05, (rss_before, rss_after)
    assert not wrong, wrong[:3]  # the enrolled image itself must come back as its own top candidate
