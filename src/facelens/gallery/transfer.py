"""Moving faces in and out of galleries: JSONL, NumPy (.npz) and Parquet files of (name, embedding, metadata),
and backend-to-backend copies that are verified (counts and bit-identical vectors) before they are reported done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import GalleryError
from facelens.gallery.base import Gallery, NewFaces

PAGE = 20_000
FORMATS = (".jsonl", ".npz", ".parquet")


@dataclass(frozen=True)
class Rows:
    """Faces as columns: one name, vector and person-metadata dict per face."""

    names: list[str]
    vectors: np.ndarray
    metadata: list[dict[str, Any]]
    model_id: str | None = None


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise GalleryError(f"{path}: unknown format {suffix!r}; use one of {', '.join(FORMATS)}")
    return suffix


def iter_faces(gallery: Gallery, with_embeddings: bool = True) -> Iterator[list]:
    """Pages of FaceRecords in id order (bounded memory on million-face galleries)."""
    after = 0
    while True:
        page = gallery.faces(with_embeddings=with_embeddings, after_id=after, limit=PAGE)
        if not page:
            return
        yield page
        after = page[-1].face_id


def export_gallery(gallery: Gallery, path: str | Path, on_progress: Callable[[int], None] | None = None) -> int:
    """Write every face as (name, embedding, person metadata); returns the number of faces written."""
    path = Path(path)
    fmt = _format(path)
    metadata = {p.name: p.metadata for p in gallery.people()}
    names: list[str] = []
    vectors: list[np.ndarray] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    count = 0
    with open(tmp, "w", encoding="utf-8") if fmt == ".jsonl" else _null() as handle:
        if handle is not None:
            handle.write(json.dumps({"facelens_gallery": 1, "model_id": gallery.model_id, "dim": gallery.dim}) + "\n")
        for page in iter_faces(gallery):
            for face in page:
                if handle is not None:
                    row = {"name": face.name, "embedding": face.embedding.tolist(), "metadata": metadata.get(face.name, {})}
                    handle.write(json.dumps(row) + "\n")
                else:
                    names.append(face.name)
                    vectors.append(face.embedding)
            count += len(page)
            if on_progress:
                on_progress(len(page))
    matrix = np.stack(vectors) if vectors else np.zeros((0, gallery.dim), np.float32)
    meta_json = [json.dumps(metadata.get(n, {})) for n in names]
    if fmt == ".npz":
        with open(tmp, "wb") as handle:
            np.savez(handle, names=np.array(names, dtype=str), embeddings=matrix, metadata=np.array(meta_json, dtype=str),
                     model_id=np.array(gallery.model_id))
    elif fmt == ".parquet":
        pa, pq = _arrow()
        table = pa.table(
            {
                "name": pa.array(names, pa.string()),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), pa.float32()), gallery.dim),
                "metadata": pa.array(meta_json, pa.string()),
            }
        ).replace_schema_metadata({"facelens_model_id": gallery.model_id})
        pq.write_table(table, tmp)
    tmp.replace(path)  # a crash mid-export never leaves a file that looks complete
    return count


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise GalleryError("Parquet files need pyarrow: pip install 'facelens[parquet]'") from exc
    return pa, pq


def read_rows(path: str | Path) -> Rows:
    """Read an import file, checking its shape; errors name the file and the line or field at fault."""
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise GalleryError(f"{path}: no such file")
    if fmt == ".jsonl":
        names, vectors, metadata, model_id = [], [], [], None
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise GalleryError(f"{path}:{number}: not JSON ({exc.msg})") from exc
                if "facelens_gallery" in row:
                    model_id = row.get("model_id")
                    continue
                if not isinstance(row, dict) or "name" not in row or "embedding" not in row:
                    raise GalleryError(f"{path}:{number}: each line needs 'name' and 'embedding'")
                names.append(str(row["name"]))
                vectors.append(row["embedding"])
                metadata.append(row.get("metadata") or {})
        try:
            matrix = np.asarray(vectors, np.float32)
        except ValueError as exc:
            raise GalleryError(f"{path}: embeddings have different lengths") from exc
        return Rows(names, matrix.reshape(len(names), -1) if names else matrix, metadata, model_id)
    if fmt == ".npz":
        try:
            data = np.load(path, allow_pickle=False)
            names = [str(n) for n in data["names"]]
            matrix = np.asarray(data["embeddings"], np.float32)
            meta = [json.loads(m) for m in data["metadata"]] if "metadata" in data.files else [{}] * len(names)
            model_id = str(data["model_id"]) if "model_id" in data.files else None
        except (KeyError, ValueError, OSError) as exc:
            raise GalleryError(f"{path}: not a gallery .npz (needs arrays 'names' and 'embeddings'): {exc}") from exc
        return Rows(names, matrix, meta, model_id)
    pa, pq = _arrow()
    try:
        table = pq.read_table(path)
        names = [str(n) for n in table.column("name").to_pylist()]
        column = table.column("embedding").combine_chunks()
        matrix = np.asarray(column.flatten().to_numpy(zero_copy_only=False), np.float32).reshape(len(names), -1)
        meta = (
            [json.loads(m) if isinstance(m, str) else (m or {}) for m in table.column("metadata").to_pylist()]
            if "metadata" in table.column_names
            else [{}] * len(names)
        )
        model_id = (table.schema.metadata or {}).get(b"facelens_model_id")
    except (KeyError, pa.ArrowException, ValueError) as exc:
        raise GalleryError(f"{path}: not a gallery Parquet file (needs columns 'name' and 'embedding'): {exc}") from exc
    return Rows(names, matrix, meta, model_id.decode() if model_id else None)


def import_file(
    gallery: Gallery, path: str | Path, model_id: str | None = None, on_progress: Callable[[int], None] | None = None
) -> int:
    """Add every face of an import file; each person whole in one transaction. Returns faces added.

    The file's recorded model (or ``model_id``) must match the gallery's. Importing is idempotent: a face whose
    vector the person already has (from an earlier import of the same file, say) is skipped, so a re-run after an
    interruption, or a second import of the same file, adds nothing twice."""
    rows = read_rows(path)
    if len(rows.names) == 0:
        return 0
    if model_id or rows.model_id:
        gallery.check_model(model_id or rows.model_id)
    digests = [vector_hash(v) for v in np.asarray(rows.vectors, np.float32)]
    seen: set[tuple[str, str]] = set()
    keep = []
    for index, (name, digest) in enumerate(zip(rows.names, digests)):
        key = (str(name).strip(), digest)
        if key not in seen and not gallery._hash_exists(key[0], digest):
            keep.append(index)
        seen.add(key)
    if not keep:
        return 0
    gallery.add_embeddings([rows.names[i] for i in keep], np.asarray(rows.vectors)[keep],
                           None if rows.metadata is None else [rows.metadata[i] for i in keep],
                           model_id=model_id or rows.model_id, on_progress=on_progress,
                           content_hashes=[digests[i] for i in keep])
    return len(keep)


def vector_hash(vector: np.ndarray) -> str:
    """The content hash of a face imported as a vector: its unit-length float32 bytes, so a re-import matches."""
    vector = np.asarray(vector, np.float32)
    norm = float(np.linalg.norm(vector))
    if norm > 0 and abs(norm - 1) > 1e-6:
        vector = (vector / norm).astype(np.float32)
    return "vector:" + hashlib.sha256(vector.tobytes()).hexdigest()


def copy_gallery(source: Gallery, target: Gallery, on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Copy people (with metadata, also those without faces) and faces (vectors and provenance) into an empty
    target, then verify counts and that every vector arrived bit-identical."""
    source.check_model(target.model_id)
    if target.dim != source.dim:
        raise GalleryError(f"source vectors are {source.dim}-D, target {target.dim}-D")
    if target.face_count() or target.people():
        raise GalleryError(f"target {target.location} ({target.collection}) is not empty; copy into an empty gallery")
    people = source.people()
    for person in people:
        if person.face_count == 0:
            target.add_person(person.name, person.metadata)
    metadata = {p.name: p.metadata for p in people}
    seen: set[str] = set()
    for page in iter_faces(source):
        by_name: dict[str, list] = {}
        for face in page:
            by_name.setdefault(face.name, []).append(face)
        batch = [
            NewFaces(
                name,
                np.stack([f.embedding for f in faces]),
                [{"source": f.source, "content_hash": f.content_hash, "box": f.box, "score": f.score,
                  "added_at": f.added_at} for f in faces],
                None if name in seen else (metadata.get(name) or None),
            )
            for name, faces in by_name.items()
        ]
        seen.update(by_name)
        target._insert_people(batch)
        if on_progress:
            on_progress(len(page))
    return verify_copy(source, target)


def verify_copy(source: Gallery, target: Gallery) -> dict[str, Any]:
    """Same people with the same metadata, same number of faces, and per person the same multiset of vectors."""
    src_people = {p.name: (p.face_count, p.metadata) for p in source.people()}
    dst_people = {p.name: (p.face_count, p.metadata) for p in target.people()}
    if src_people != dst_people:
        missing = sorted(set(src_people) ^ set(dst_people))[:5]
        raise GalleryError(f"copy verification failed: people differ (e.g. {missing or 'face counts or metadata'})")
    digests: dict[str, list[bytes]] = {}
    for gallery, sign in ((source, 1), (target, -1)):
        for page in iter_faces(gallery):
            for face in page:
                digests.setdefault(face.name, []).append(bytes([sign > 0]) + face.embedding.astype(np.float32).tobytes())
    for name, items in digests.items():
        ours = sorted(i[1:] for i in items if i[0] == 1)
        theirs = sorted(i[1:] for i in items if i[0] == 0)
        if ours != theirs:
            raise GalleryError(f"copy verification failed: vectors of {name!r} differ")
    return {"people": len(src_people), "faces": source.face_count(), "verified": True}
