"""The listing stage: which images a run reads. Local files and folders are expanded by the CLI's
``expand_inputs``; object-store prefixes (``s3://bucket/prefix``, ``gs://…``) are listed and read through
``pyarrow.fs`` with the credentials the environment already holds (no credential handling of our own)."""

from __future__ import annotations

from collections.abc import Collection

from facelens.errors import FacelensError, ImageDecodeError

#: Schemes read through pyarrow.fs rather than opened as paths (``file://`` too: a URI list may mix them).
REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "hdfs://", "abfs://", "abfss://", "file://")


def is_remote(source: object) -> bool:
    return isinstance(source, str) and source.lower().startswith(REMOTE_SCHEMES)


def _filesystem(uri: str):
    try:
        from pyarrow import fs
    except ImportError:
        raise FacelensError(f"{uri}: reading object stores needs pyarrow: pip install 'facelens[ray]'") from None
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several types for bad URIs and missing credentials)
        raise FacelensError(f"{uri}: cannot open the object store: {exc}") from None


def list_remote(uri: str, suffixes: Collection[str]) -> list[str]:
    """Every image (a name ending in one of ``suffixes``) under an object-store prefix, recursively and sorted;
    the object itself when ``uri`` names one."""
    from pyarrow import fs

    store, path = _filesystem(uri)
    scheme = uri.split("://", 1)[0]
    try:
        info = store.get_file_info(path)
        if info.type == fs.FileType.File:
            return [uri]
        if info.type == fs.FileType.NotFound:
            raise FacelensError(f"{uri}: no such object or prefix")
        found = store.get_file_info(fs.FileSelector(path, recursive=True))
    except FacelensError:
        raise
    except Exception as exc:  # noqa: BLE001  (network, permissions)
        raise FacelensError(f"{uri}: cannot list: {exc}") from None
    return sorted(f"{scheme}://{f.path}" for f in found
                  if f.type == fs.FileType.File and f.path.lower().endswith(tuple(suffixes)))


def read_remote(uri: str) -> bytes:
    """An object's bytes (a worker reads its own inputs: the driver never moves image data)."""
    store, path = _filesystem(uri)
    try:
        with store.open_input_stream(path) as stream:
            return stream.read()
    except Exception as exc:  # noqa: BLE001
        raise ImageDecodeError(f"{uri}: cannot read: {exc}") from None
