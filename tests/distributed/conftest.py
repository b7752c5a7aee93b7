"""One local Ray for the session, sized for a shared 2-core machine; the tests skip when Ray is not installed."""

from __future__ import annotations

import pytest

import facelens


@pytest.fixture(scope="package")  # the Ray processes go when these tests are done, not at the end of the suite
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'facelens[ray]' to run the Ray tests")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'facelens[ray]'")
    if not ray.is_initialized():
        ray.init(num_cpus=2, object_store_memory=500 * 2**20, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def lfw_people(lfw_dir):
    """(name, image paths) for the first LFW people, in name order, about 200 images in all."""
    root = lfw_dir / "lfw_deepfunneled"
    if not root.is_dir():
        pytest.skip(f"{root} not found (set FACELENS_TEST_DATA)")
    jobs, total = [], 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(str(p) for p in folder.glob("*.jpg"))
        jobs.append((folder.name, images))
        total += len(images)
        if total >= 200:
            break
    return jobs


@pytest.fixture(scope="package")
def local_enrol(lfw_people, tmp_path_factory):
    """The reference: the same people enrolled locally into a folder gallery (location, results)."""
    location = tmp_path_factory.mktemp("local") / "gallery"
    results = facelens.enroll_people(str(location), lfw_people, workers=2)
    return location, results
