"""The embedded default gallery: a folder holding one SQLite database (WAL mode), the store of record.

Every write is one ``BEGIN IMMEDIATE`` transaction, so concurrent writers queue instead of losing rows and a
process killed mid-write leaves nothing half-written. Search is exact (numpy) over a matrix cached in memory and
reloaded when another connection changes the store (SQLite's ``data_version``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facelens.errors import GalleryError, NotFoundError
from facelens.gallery.base import FaceRecord, Gallery, Person, now

DB_NAME = "gallery.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL DEFAULT '',
    box TEXT NOT NULL DEFAULT '[]',
    score REAL NOT NULL DEFAULT 0,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
CREATE INDEX IF NOT EXISTS faces_hash ON faces(content_hash);
"""


class ExactIndex:
    """Brute-force cosine search over a float32 matrix: exact, and fastest for small galleries."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = ids
        self.vectors = vectors

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.ids)
        k_eff = min(k, n)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        if n == 0:
            return scores, ids
        sims = queries @ self.vectors.T
        if k_eff < n:
            part = np.argpartition(-sims, k_eff - 1, axis=1)[:, :k_eff]
        else:
            part = np.tile(np.arange(n), (len(queries), 1))
        part_scores = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_scores, axis=1)
        top = np.take_along_axis(part, order, axis=1)
        scores[:, :k_eff] = np.take_along_axis(sims, top, axis=1)
        ids[:, :k_eff] = self.ids[top]
        return scores, ids


class LocalGallery(Gallery):
    def __init__(self, folder: str | Path, model_id: str | None = None, create: bool = True, dim: int = 128) -> None:
        self.folder = Path(folder).expanduser()
        self.location = str(self.folder)
        db_path = self.folder / DB_NAME
        if self.folder.exists() and not self.folder.is_dir():
            raise GalleryError(f"{self.folder} is a file, not a gallery folder")
        if not db_path.exists():
            if self.folder.exists() and any(self.folder.iterdir()):
                raise GalleryError(f"{self.folder} is not a facelens gallery (no {DB_NAME}) and is not empty")
            if not create:
                raise GalleryError(f"{self.folder} is not a facelens gallery (no {DB_NAME})")
            self.folder.mkdir(parents=True, exist_ok=True)
        self._db_path = db_path
        self._local = threading.local()
        self._index: ExactIndex | None = None
        self._index_version: tuple[int, int] | None = None
        self._index_lock = threading.Lock()
        try:
            with self._write() as conn:
                for statement in _SCHEMA.strip().split(";"):
                    if statement.strip():
                        conn.execute(statement)
                stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                if "model_id" not in stored:
                    conn.execute("INSERT INTO meta VALUES ('model_id', ?)", (model_id or "dlib_resnet_v1",))
                    conn.execute("INSERT INTO meta VALUES ('dim', ?)", (str(dim),))
                    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    stored = {"model_id": model_id or "dlib_resnet_v1", "dim": str(dim)}
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{db_path} is not a readable facelens gallery database ({exc})") from exc
        self.model_id = stored["model_id"]
        self._dim = int(stored.get("dim", dim))
        if model_id is not None:
            self.check_model(model_id)

    # -- connections ---------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @property
    def dim(self) -> int:
        return self._dim

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- primitives ----------------------------------------------------------------------------------
    def _insert(self, name: str, vectors: np.ndarray, faces: Sequence[dict[str, Any]], metadata: dict | None) -> list[int]:
        stamp = now()
        ids = []
        with self._write() as conn:
            row = conn.execute("SELECT id, metadata FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                person_id = conn.execute(
                    "INSERT INTO people (name, metadata, created_at) VALUES (?, ?, ?)",
                    (name, json.dumps(metadata or {}), stamp),
                ).lastrowid
            else:
                person_id = row[0]
                if metadata:
                    merged = {**json.loads(row[1]), **metadata}
                    conn.execute("UPDATE people SET metadata = ? WHERE id = ?", (json.dumps(merged), person_id))
            for vector, face in zip(vectors, faces):
                ids.append(
                    conn.execute(
                        "INSERT INTO faces (person_id, embedding, source, content_hash, box, score, added_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            person_id,
                            np.asarray(vector, np.float32).tobytes(),
                            face.get("source", ""),
                            face.get("content_hash", ""),
                            json.dumps(face.get("box", [])),
                            float(face.get("score", 0.0)),
                            stamp,
                        ),
                    ).lastrowid
                )
        return ids

    def _version(self) -> tuple[int, int]:
        conn = self._conn()
        data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        changes = conn.total_changes
        return (data_version, changes)

    def _load_index(self) -> ExactIndex:
        with self._index_lock:
            version = self._version()
            if self._index is None or version != self._index_version:
                rows = self._conn().execute("SELECT id, embedding FROM faces ORDER BY id").fetchall()
                ids = np.array([r[0] for r in rows], np.int64)
                vectors = (
                    np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self._dim)
                    if rows
                    else np.zeros((0, self._dim), np.float32)
                )
                self._index = ExactIndex(ids, vectors)
                self._index_version = version
            return self._index

    def _search_faces(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self._load_index().search(vectors, k)

    def _names_of(self, face_ids: Iterable[int]) -> dict[int, str]:
        ids = list(face_ids)
        out: dict[int, str] = {}
        conn = self._conn()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                conn.execute(
                    f"SELECT faces.id, people.name FROM faces JOIN people ON people.id = faces.person_id "
                    f"WHERE faces.id IN ({marks})",
                    chunk,
                ).fetchall()
            )
        return out

    def _hash_exists(self, name: str, digest: str) -> bool:
        row = self._conn().execute(
            "SELECT 1 FROM faces JOIN people ON people.id = faces.person_id WHERE people.name = ? AND content_hash = ?",
            (name, digest),
        ).fetchone()
        return row is not None

    def _delete_person(self, name: str) -> int:
        with self._write() as conn:
            row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"no person named {name!r} in {self.location}")
            count = conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", (row[0],)).fetchone()[0]
            conn.execute("DELETE FROM faces WHERE person_id = ?", (row[0],))
            conn.execute("DELETE FROM people WHERE id = ?", (row[0],))
        return int(count)

    def _delete_face(self, face_id: int) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT person_id FROM faces WHERE id = ?", (int(face_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"no face with id {face_id} in {self.location}")
            conn.execute("DELETE FROM faces WHERE id = ?", (int(face_id),))
            left = conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", (row[0],)).fetchone()[0]
            if left == 0:
                conn.execute("DELETE FROM people WHERE id = ?", (row[0],))

    def _rename(self, old: str, new: str) -> None:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM people WHERE name = ?", (old,)).fetchone() is None:
                raise NotFoundError(f"no person named {old!r} in {self.location}")
            if conn.execute("SELECT 1 FROM people WHERE name = ?", (new,)).fetchone() is not None:
                raise GalleryError(f"{new!r} already exists in {self.location}; remove or rename it first")
            conn.execute("UPDATE people SET name = ? WHERE name = ?", (new, old))

    def people(self) -> list[Person]:
        rows = self._conn().execute(
            "SELECT people.name, COUNT(faces.id), people.metadata, people.created_at FROM people "
            "LEFT JOIN faces ON faces.person_id = people.id GROUP BY people.id ORDER BY people.name"
        ).fetchall()
        return [Person(name=r[0], face_count=int(r[1]), metadata=json.loads(r[2]), created_at=r[3]) for r in rows]

    def faces(self, name: str | None = None, with_embeddings: bool = False) -> list[FaceRecord]:
        query = (
            "SELECT faces.id, people.name, faces.source, faces.content_hash, faces.box, faces.score, faces.added_at, "
            "faces.embedding FROM faces JOIN people ON people.id = faces.person_id"
        )
        params: tuple = ()
        if name is not None:
            query += " WHERE people.name = ?"
            params = (name,)
            if self._conn().execute("SELECT 1 FROM people WHERE name = ?", params).fetchone() is None:
                raise NotFoundError(f"no person named {name!r} in {self.location}")
        rows = self._conn().execute(query + " ORDER BY faces.id", params).fetchall()
        return [
            FaceRecord(
                face_id=r[0],
                name=r[1],
                source=r[2],
                content_hash=r[3],
                box=json.loads(r[4]),
                score=r[5],
                added_at=r[6],
                embedding=np.frombuffer(r[7], np.float32).copy() if with_embeddings else None,
            )
            for r in rows
        ]

    def face_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM faces").fetchone()[0])
