"""A gallery's photo library: the photos a clustering run has seen, every face detected in them, and the
user's cannot-link constraints. Kept beside the people and faces of the same store, so a face that joins a
person is written in the same transaction that links its detection (see ``detection_id`` in ``NewFaces.faces``).

One SQL text for both backends (SQLite and PostgreSQL): ``?`` placeholders become ``%s`` for psycopg. Tables are
created on first use, so galleries made before them need no migration.

A detection is in one of four states: ``pending`` (waits for clustering), ``low_quality`` (kept, never clustered
or enrolled), ``removed`` (dismissed by the user; never comes back) or assigned (``face_id`` names the gallery
face it became; a face removed from the gallery since counts as removed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PENDING, LOW_QUALITY, REMOVED, ASSIGNED = "pending", "low_quality", "removed", "assigned"
#: Constraint kinds: a detection is not a person (a = detection id, b = person id); two people differ (a < b).
NOT_PERSON, DIFFERENT = "not_person", "different"

_TABLES = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS facelens_photos (
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER NOT NULL, path TEXT NOT NULL,
    content_hash TEXT NOT NULL DEFAULT '', mtime REAL NOT NULL, size INTEGER NOT NULL, error TEXT,
    scanned_at REAL NOT NULL, UNIQUE (collection_id, path));
CREATE TABLE IF NOT EXISTS facelens_detections (
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER NOT NULL,
    photo_id INTEGER NOT NULL REFERENCES facelens_photos(id) ON DELETE CASCADE,
    box TEXT NOT NULL, score REAL NOT NULL, quality REAL, embedding BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', face_id INTEGER);
CREATE INDEX IF NOT EXISTS facelens_detections_photo ON facelens_detections(photo_id);
CREATE INDEX IF NOT EXISTS facelens_detections_face ON facelens_detections(face_id);
CREATE TABLE IF NOT EXISTS facelens_constraints (
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER NOT NULL, kind TEXT NOT NULL,
    a INTEGER NOT NULL, b INTEGER NOT NULL, created_at REAL NOT NULL, UNIQUE (collection_id, kind, a, b))
""",
    "postgres": """
CREATE TABLE IF NOT EXISTS facelens_photos (
    id BIGSERIAL PRIMARY KEY, collection_id INTEGER NOT NULL, path TEXT NOT NULL,
    content_hash TEXT NOT NULL DEFAULT '', mtime DOUBLE PRECISION NOT NULL, size BIGINT NOT NULL, error TEXT,
    scanned_at DOUBLE PRECISION NOT NULL, UNIQUE (collection_id, path));
CREATE TABLE IF NOT EXISTS facelens_detections (
    id BIGSERIAL PRIMARY KEY, collection_id INTEGER NOT NULL,
    photo_id BIGINT NOT NULL REFERENCES facelens_photos(id) ON DELETE CASCADE,
    box TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, quality DOUBLE PRECISION, embedding BYTEA NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', face_id BIGINT);
CREATE INDEX IF NOT EXISTS facelens_detections_photo ON facelens_detections(photo_id);
CREATE INDEX IF NOT EXISTS facelens_detections_face ON facelens_detections(face_id);
CREATE TABLE IF NOT EXISTS facelens_constraints (
    id BIGSERIAL PRIMARY KEY, collection_id INTEGER NOT NULL, kind TEXT NOT NULL,
    a BIGINT NOT NULL, b BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, UNIQUE (collection_id, kind, a, b))
""",
}


@dataclass(frozen=True)
class PhotoState:
    """What the library knows of a file: enough to tell whether it changed since it was processed."""

    photo_id: int
    path: str
    mtime: float
    size: int
    content_hash: str
    error: str | None = None


@dataclass(frozen=True)
class ScannedFace:
    box: list[float]
    score: float
    quality: float | None
    embedding: np.ndarray
    state: str = PENDING


@dataclass(frozen=True)
class ScannedPhoto:
    """One processed file and its faces, to store (replacing what an older version of the file left)."""

    path: str
    mtime: float
    size: int
    content_hash: str
    faces: Sequence[ScannedFace] = field(default_factory=tuple)
    error: str | None = None


@dataclass(frozen=True)
class Detection:
    """One face found in a library photo. ``person`` is the gallery person it belongs to (None: not assigned)."""

    detection_id: int
    photo_id: int
    path: str
    box: list[float]
    score: float
    quality: float | None
    state: str
    face_id: int | None
    person: str | None
    embedding: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "detection": self.detection_id, "path": self.path, "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 4), "quality": None if self.quality is None else round(self.quality, 4),
            "state": self.state, "person": self.person, "face_id": self.face_id,
        }  # fmt: skip


class LibrarySQL:
    """The library's statements over one DB-API connection (``dialect``: ``sqlite`` or ``postgres``)."""

    def __init__(self, dialect: str, collection_id: int, people_table: str, faces_table: str) -> None:
        self.dialect, self.cid = dialect, collection_id
        self.people, self.faces = people_table, faces_table

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.dialect == "postgres" else text

    def run(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self.sql(text), tuple(params))

    def create(self, conn: Any) -> None:
        for statement in _TABLES[self.dialect].strip().split(";"):
            if statement.strip():
                conn.execute(statement)

    # -- photos ---------------------------------------------------------------------------------------
    def photos(self, conn: Any) -> dict[str, PhotoState]:
        rows = self.run(conn, "SELECT id, path, mtime, size, content_hash, error FROM facelens_photos "
                              "WHERE collection_id = ?", (self.cid,)).fetchall()
        return {r[1]: PhotoState(int(r[0]), r[1], float(r[2]), int(r[3]), r[4], r[5]) for r in rows}

    def put_photos(self, conn: Any, photos: Sequence[ScannedPhoto], stamp: float,
                   drop_faces: Callable[[Any, list[int]], None]) -> list[list[int]]:
        """Store each photo and its detections, replacing an older version's (its gallery faces go through
        ``drop_faces`` so the backend's index follows); returns the new detection ids per photo."""
        out = []
        for photo in photos:
            row = self.run(conn, "SELECT id FROM facelens_photos WHERE collection_id = ? AND path = ?",
                           (self.cid, photo.path)).fetchone()
            if row is not None:
                photo_id = int(row[0])
                self._forget_detections(conn, photo_id, drop_faces)
                self.run(conn, "UPDATE facelens_photos SET content_hash = ?, mtime = ?, size = ?, error = ?, "
                               "scanned_at = ? WHERE id = ?",
                         (photo.content_hash, photo.mtime, photo.size, photo.error, stamp, photo_id))
            else:
                photo_id = int(self.run(
                    conn, "INSERT INTO facelens_photos (collection_id, path, content_hash, mtime, size, error, "
                          "scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (self.cid, photo.path, photo.content_hash, photo.mtime, photo.size, photo.error, stamp),
                ).fetchone()[0])
            ids = []
            for face in photo.faces:
                ids.append(int(self.run(
                    conn, "INSERT INTO facelens_detections (collection_id, photo_id, box, score, quality, embedding, "
                          "state) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (self.cid, photo_id, json.dumps([round(float(v), 1) for v in face.box]), float(face.score),
                     None if face.quality is None else float(face.quality),
                     np.asarray(face.embedding, np.float32).tobytes(), face.state),
                ).fetchone()[0]))
            out.append(ids)
        return out

    def touch(self, conn: Any, path: str, mtime: float, size: int) -> None:
        self.run(conn, "UPDATE facelens_photos SET mtime = ?, size = ? WHERE collection_id = ? AND path = ?",
                 (mtime, size, self.cid, path))

    def forget_photos(self, conn: Any, paths: Sequence[str], drop_faces: Callable[[Any, list[int]], None]) -> int:
        """Remove photos no longer on disk, their detections and the gallery faces they became."""
        gone = 0
        for path in paths:
            row = self.run(conn, "SELECT id FROM facelens_photos WHERE collection_id = ? AND path = ?",
                           (self.cid, path)).fetchone()
            if row is not None:
                self._forget_detections(conn, int(row[0]), drop_faces)
                self.run(conn, "DELETE FROM facelens_photos WHERE id = ?", (int(row[0]),))
                gone += 1
        return gone

    def _forget_detections(self, conn: Any, photo_id: int, drop_faces: Callable[[Any, list[int]], None]) -> None:
        rows = self.run(conn, "SELECT id, face_id FROM facelens_detections WHERE photo_id = ?", (photo_id,)).fetchall()
        faces = [int(r[1]) for r in rows if r[1] is not None]
        alive = [f for f in faces if self.run(conn, f"SELECT 1 FROM {self.faces} WHERE id = ?", (f,)).fetchone()]
        if alive:
            drop_faces(conn, alive)
        for detection_id, _ in rows:
            self.run(conn, "DELETE FROM facelens_constraints WHERE collection_id = ? AND kind = ? AND a = ?",
                     (self.cid, NOT_PERSON, int(detection_id)))
        self.run(conn, "DELETE FROM facelens_detections WHERE photo_id = ?", (photo_id,))

    # -- detections -----------------------------------------------------------------------------------
    def detections(self, conn: Any, with_embeddings: bool = False, person_id: int | None = None,
                   ids: Sequence[int] | None = None) -> list[Detection]:
        query = (
            "SELECT d.id, d.photo_id, ph.path, d.box, d.score, d.quality, d.state, d.face_id, p.name"
            + (", d.embedding" if with_embeddings else "")
            + f" FROM facelens_detections d JOIN facelens_photos ph ON ph.id = d.photo_id "
            f"LEFT JOIN {self.faces} f ON f.id = d.face_id LEFT JOIN {self.people} p ON p.id = f.person_id "
            "WHERE d.collection_id = ?"
        )
        params: list[Any] = [self.cid]
        if person_id is not None:
            query += " AND f.person_id = ?"
            params.append(person_id)
        rows = []
        if ids is not None:
            ids = [int(i) for i in ids]
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                rows += self.run(conn, query + f" AND d.id IN ({','.join('?' * len(chunk))})", (*params, *chunk)).fetchall()
            rows.sort(key=lambda r: r[0])
        else:
            rows = self.run(conn, query + " ORDER BY d.id", params).fetchall()
        out = []
        for r in rows:
            state, face_id, person = r[6], r[7], r[8]
            if face_id is not None:
                state = ASSIGNED if person is not None else REMOVED  # its face was removed from the gallery
            out.append(Detection(
                int(r[0]), int(r[1]), r[2], json.loads(r[3]), float(r[4]), None if r[5] is None else float(r[5]),
                state, None if face_id is None or person is None else int(face_id), person,
                np.frombuffer(bytes(r[9]), np.float32).copy() if with_embeddings else None,
            ))  # fmt: skip
        return out

    def forget_person(self, conn: Any, name: str) -> None:
        rows = self.run(conn, f"SELECT d.id FROM facelens_detections d JOIN {self.faces} f ON f.id = d.face_id "
                              f"JOIN {self.people} p ON p.id = f.person_id WHERE d.collection_id = ? AND p.name = ? "
                              "AND p.collection_id = ?", (self.cid, name, self.cid)).fetchall()
        for (detection_id,) in rows:
            self.run(conn, "DELETE FROM facelens_constraints WHERE collection_id = ? AND kind = ? AND a = ?",
                     (self.cid, NOT_PERSON, int(detection_id)))
            self.run(conn, "DELETE FROM facelens_detections WHERE id = ?", (int(detection_id),))

    def set_state(self, conn: Any, detection_ids: Sequence[int], state: str) -> None:
        """Mark detections (pending / removed / low_quality); they no longer point at any gallery face."""
        for detection_id in detection_ids:
            self.run(conn, "UPDATE facelens_detections SET state = ?, face_id = NULL WHERE id = ? AND collection_id = ?",
                     (state, int(detection_id), self.cid))

    def link(self, conn: Any, detection_id: int, face_id: int) -> None:
        self.run(conn, "UPDATE facelens_detections SET face_id = ?, state = ? WHERE id = ? AND collection_id = ?",
                 (int(face_id), ASSIGNED, int(detection_id), self.cid))

    # -- constraints ----------------------------------------------------------------------------------
    def add_constraint(self, conn: Any, kind: str, a: int, b: int, stamp: float) -> None:
        if kind == DIFFERENT:
            a, b = min(a, b), max(a, b)
        exists = self.run(conn, "SELECT 1 FROM facelens_constraints WHERE collection_id = ? AND kind = ? AND a = ? "
                                "AND b = ?", (self.cid, kind, int(a), int(b))).fetchone()
        if not exists:
            self.run(conn, "INSERT INTO facelens_constraints (collection_id, kind, a, b, created_at) "
                           "VALUES (?, ?, ?, ?, ?)", (self.cid, kind, int(a), int(b), stamp))

    def constraints(self, conn: Any) -> list[tuple[str, int, int]]:
        rows = self.run(conn, "SELECT kind, a, b FROM facelens_constraints WHERE collection_id = ? ORDER BY id",
                        (self.cid,)).fetchall()
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def delete_constraint(self, conn: Any, kind: str, a: int, b: int) -> None:
        self.run(conn, "DELETE FROM facelens_constraints WHERE collection_id = ? AND kind = ? AND a = ? AND b = ?",
                 (self.cid, kind, int(a), int(b)))

    def move_person_constraints(self, conn: Any, source: int, target: int, stamp: float) -> None:
        """After a merge: what was said of ``source`` is said of ``target``."""
        for kind, a, b in self.constraints(conn):
            if kind == NOT_PERSON and b == source:
                self.add_constraint(conn, NOT_PERSON, a, target, stamp)
            elif kind == DIFFERENT and source in (a, b):
                other = b if a == source else a
                if other != target:
                    self.add_constraint(conn, DIFFERENT, other, target, stamp)
            else:
                continue
            self.delete_constraint(conn, kind, a, b)

    def not_person_vectors(self, conn: Any) -> tuple[np.ndarray, list[str]]:
        """The embeddings of detections marked "not this person", with that person's current name."""
        rows = self.run(
            conn, f"SELECT d.embedding, p.name FROM facelens_constraints c JOIN facelens_detections d ON d.id = c.a "
                  f"JOIN {self.people} p ON p.id = c.b WHERE c.collection_id = ? AND c.kind = ?", (self.cid, NOT_PERSON),
        ).fetchall()
        if not rows:
            return np.zeros((0, 0), np.float32), []
        return np.stack([np.frombuffer(bytes(r[0]), np.float32) for r in rows]), [r[1] for r in rows]

    def person_ids(self, conn: Any) -> dict[str, int]:
        rows = self.run(conn, f"SELECT name, id FROM {self.people} WHERE collection_id = ?", (self.cid,)).fetchall()
        return {r[0]: int(r[1]) for r in rows}
