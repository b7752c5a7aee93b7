"""The embedded default gallery: a folder holding one SQLite database (WAL mode), the store of record, and one
vector index per collection.

Every write is one ``BEGIN IMMEDIATE`` transaction that also appends to a change log, so concurrent writers queue
instead of losing rows, a process killed mid-write leaves nothing half-written, and every open gallery object
(in any process) brings its index up to date by replaying the log after another writer commits. Small collections
are searched exactly; large ones through a faiss HNSW index persisted under ``index/`` and memory-mapped on open.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import GalleryError, NotFoundError
from facelens.gallery.base import FaceRecord, Gallery, NewFaces, Person, now
from facelens.gallery.index import EXACT_LIMIT, TOMBSTONE_LIMIT, ExactIndex, FaceIndex, HnswIndex, IndexFiles, build_index

log = logging.getLogger(__name__)

DB_NAME = "gallery.db"
#: How long a writer waits for another process's transaction before giving up.
LOCK_TIMEOUT_S = 60.0
SCHEMA_VERSION = 2
DEFAULT_MODEL = "dlib_resnet_v1"
#: Unsaved changes after which an HNSW index is written back to disk (so other processes open it current).
SAVE_EVERY = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    dim INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    UNIQUE (collection_id, name)
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL,
    face_id INTEGER NOT NULL,
    op INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_collection ON changes(collection_id, seq);
"""


def _connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, timeout=LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    use_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def use_wal(conn: sqlite3.Connection) -> None:
    """Switch a new database to WAL, waiting out other openers: SQLite answers a concurrent switch with "database is
    locked" at once instead of calling the busy handler."""
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def _schema_version(conn: sqlite3.Connection) -> int:
    """0 for an empty database, 1 for the first layout (a meta table without a version row)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    version = int(row[0]) if row else 1
    if version > SCHEMA_VERSION:
        raise GalleryError(f"gallery schema {version} is newer than this facelens ({SCHEMA_VERSION}); upgrade facelens")
    return version


def _migrate(conn: sqlite3.Connection, model_id: str | None, dim: int) -> None:
    """Create the schema, or upgrade a version-1 gallery (one collection, people unique by name) in place."""
    if _schema_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("PRAGMA foreign_keys=OFF")  # table rebuild (SQLite's documented procedure); no effect inside a tx
    try:
        with _transaction(conn):
            version = _schema_version(conn)  # again under the write lock: another process may have just migrated
            if version == SCHEMA_VERSION:
                return
            if version == 1:
                old_meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                conn.execute("ALTER TABLE people RENAME TO people_v1")
                conn.execute("ALTER TABLE faces RENAME TO faces_v1")
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
            if version == 1:
                conn.execute(
                    "INSERT INTO collections (id, name, model_id, dim, created_at) VALUES (1, 'default', ?, ?, ?)",
                    (old_meta.get("model_id", DEFAULT_MODEL), int(old_meta.get("dim", dim)), now()),
                )
                conn.execute("INSERT INTO people SELECT id, 1, name, metadata, created_at FROM people_v1")
                conn.execute(
                    "INSERT INTO faces SELECT id, person_id, embedding, source, content_hash, box, score, added_at "
                    "FROM faces_v1"
                )
                conn.execute("DROP TABLE faces_v1")
                conn.execute("DROP TABLE people_v1")
                conn.execute("DELETE FROM meta WHERE key IN ('model_id', 'dim')")
                log.info("upgraded gallery schema 1 -> %d", SCHEMA_VERSION)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise GalleryError(f"gallery upgrade found dangling rows {problems[:3]}; nothing was changed")
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def _open_store(folder: Path, create: bool) -> Path:
    if folder.exists() and not folder.is_dir():
        raise GalleryError(f"{folder} is a file, not a gallery folder")
    db_path = folder / DB_NAME
    if not db_path.exists():
        # another process may be creating this gallery right now: its database files do not make the folder foreign
        if folder.exists() and any(not entry.name.startswith(DB_NAME) for entry in folder.iterdir()):
            raise GalleryError(f"{folder} is not a facelens gallery (no {DB_NAME}) and is not empty")
        if not create:
            raise GalleryError(f"{folder} is not a facelens gallery (no {DB_NAME})")
        folder.mkdir(parents=True, exist_ok=True)
    return db_path


def list_collections(folder: str | Path) -> list[str]:
    db_path = _open_store(Path(folder).expanduser(), create=False)
    conn = _connect(db_path)
    try:
        _migrate(conn, None, 128)
        return [r[0] for r in conn.execute("SELECT name FROM collections ORDER BY name")]
    finally:
        conn.close()


def drop_collection(folder: str | Path, collection: str) -> int:
    """Delete a collection, its people, faces and index; returns how many faces went."""
    folder = Path(folder).expanduser()
    conn = _connect(_open_store(folder, create=False))
    try:
        _migrate(conn, None, 128)
        with _transaction(conn):
            row = conn.execute("SELECT id FROM collections WHERE name = ?", (collection,)).fetchone()
            if row is None:
                raise NotFoundError(f"no gallery (collection) {collection!r} here")
            count = conn.execute(
                "SELECT COUNT(*) FROM faces JOIN people ON people.id = faces.person_id WHERE people.collection_id = ?",
                (row[0],),
            ).fetchone()[0]
            conn.execute(
                "DELETE FROM faces WHERE person_id IN (SELECT id FROM people WHERE collection_id = ?)", (row[0],)
            )
            conn.execute("DELETE FROM people WHERE collection_id = ?", (row[0],))
            conn.execute("DELETE FROM changes WHERE collection_id = ?", (row[0],))
            conn.execute("DELETE FROM collections WHERE id = ?", (row[0],))
        IndexFiles(folder, row[0]).remove()
        return int(count)
    finally:
        conn.close()


class LocalGallery(Gallery):
    def __init__(
        self,
        folder: str | Path,
        model_id: str | None = None,
        create: bool = True,
        dim: int = 128,
        collection: str = "default",
        exact_limit: int = EXACT_LIMIT,
    ) -> None:
        self.folder = Path(folder).expanduser()
        self.location = str(self.folder)
        self.collection = collection
        self._db_path = _open_store(self.folder, create)
        self._local = threading.local()
        self._index: FaceIndex | None = None
        self._index_seq = 0
        self._index_version: tuple[int, int] | None = None
        self._unsaved = 0
        self._index_lock = threading.RLock()
        self._exact_limit = exact_limit
        #: face id -> person id (-1: unknown) for the indexed faces, so a search names its hits by one small query
        #: on people instead of a join per face id (a face never changes person; renames change only people rows)
        self._person_of = np.full(0, -1, np.int64)
        try:
            conn = self._conn()
            _migrate(conn, model_id, dim)
            row = conn.execute("SELECT id, model_id, dim FROM collections WHERE name = ?", (collection,)).fetchone()
            if row is None:
                if not create:
                    raise NotFoundError(f"no gallery (collection) {collection!r} here")
                with _transaction(conn):
                    row = conn.execute("SELECT id, model_id, dim FROM collections WHERE name = ?", (collection,)).fetchone()
                    if row is None:
                        cid = conn.execute(
                            "INSERT INTO collections (name, model_id, dim, created_at) VALUES (?, ?, ?, ?)",
                            (collection, model_id or DEFAULT_MODEL, dim, now()),
                        ).lastrowid
                        row = (cid, model_id or DEFAULT_MODEL, dim)
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self._db_path} is not a readable facelens gallery database ({exc})") from exc
        self._cid, self.model_id, self._dim = int(row[0]), str(row[1]), int(row[2])
        self._files = IndexFiles(self.folder, self._cid)
        if model_id is not None:
            self.check_model(model_id)

    # -- connections ---------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self._db_path)
        return conn

    def _write(self):  # noqa: ANN202 - a context manager
        return _transaction(self._conn())

    @property
    def dim(self) -> int:
        return self._dim

    def close(self) -> None:
        with self._index_lock:
            if isinstance(self._index, HnswIndex) and self._unsaved:
                self._save_index()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _person_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM people WHERE collection_id = ? AND name = ?", (self._cid, name)).fetchone()
        if row is None:
            raise NotFoundError(f"no person named {name!r} in gallery {self.collection!r}")
        return int(row[0])

    def _log(self, conn: sqlite3.Connection, face_ids: Iterable[int], op: int) -> None:
        conn.executemany(
            "INSERT INTO changes (collection_id, face_id, op) VALUES (?, ?, ?)", [(self._cid, int(i), op) for i in face_ids]
        )

    # -- primitives ----------------------------------------------------------------------------------
    def _insert_people(self, batch: Sequence[NewFaces]) -> list[list[int]]:
        stamp = now()
        out = []
        with self._write() as conn:
            for item in batch:
                row = conn.execute(
                    "SELECT id, metadata FROM people WHERE collection_id = ? AND name = ?", (self._cid, item.name)
                ).fetchone()
                if row is None:
                    person_id = conn.execute(
                        "INSERT INTO people (collection_id, name, metadata, created_at) VALUES (?, ?, ?, ?)",
                        (self._cid, item.name, json.dumps(item.metadata or {}), stamp),
                    ).lastrowid
                else:
                    person_id = row[0]
                    if item.metadata:
                        merged = {**json.loads(row[1]), **item.metadata}
                        conn.execute("UPDATE people SET metadata = ? WHERE id = ?", (json.dumps(merged), person_id))
                ids = []
                for vector, face in zip(item.vectors, item.faces):
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
                                face.get("added_at", stamp),
                            ),
                        ).lastrowid
                    )
                    if face.get("detection_id") is not None:  # a library face joining a person: linked in this tx
                        self._library_sql().link(conn, face["detection_id"], ids[-1])
                self._log(conn, ids, 1)
                out.append(ids)
        return out

    def _add_person(self, name: str, metadata: dict[str, Any]) -> None:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM people WHERE collection_id = ? AND name = ?", (self._cid, name)).fetchone():
                raise GalleryError(f"{name!r} already exists in gallery {self.collection!r}")
            conn.execute(
                "INSERT INTO people (collection_id, name, metadata, created_at) VALUES (?, ?, ?, ?)",
                (self._cid, name, json.dumps(metadata), now()),
            )

    def _update_person(self, name: str, metadata: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute("UPDATE people SET metadata = ? WHERE id = ?", (json.dumps(metadata), self._person_id(conn, name)))

    # -- the index -----------------------------------------------------------------------------------
    def _version(self) -> tuple[int, int]:
        conn = self._conn()
        return (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)

    def _read_vectors(
        self, conn: sqlite3.Connection, face_ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face ids, vectors, person ids) of this collection's faces, all or those listed."""
        base = (
            "SELECT faces.id, faces.embedding, faces.person_id FROM faces JOIN people ON people.id = faces.person_id "
            "WHERE people.collection_id = ?"
        )
        if face_ids is None:
            rows = conn.execute(base + " ORDER BY faces.id", (self._cid,)).fetchall()
        else:
            rows = []
            ids = list(face_ids)
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                rows += conn.execute(base + f" AND faces.id IN ({','.join('?' * len(chunk))})", (self._cid, *chunk)).fetchall()
        ids_out = np.array([r[0] for r in rows], np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self._dim)
        return ids_out, vectors, np.array([r[2] for r in rows], np.int64)

    def _note_people(self, face_ids: np.ndarray, person_ids: np.ndarray, fresh: bool = False) -> None:
        """Record whose each indexed face is (``fresh``: forget everything noted before)."""
        person_of = np.full(0, -1, np.int64) if fresh else self._person_of
        top = int(face_ids.max()) + 1 if len(face_ids) else 0
        if top > len(person_of):
            grown = np.full(max(top, len(person_of) * 3 // 2), -1, np.int64)
            grown[: len(person_of)] = person_of
            person_of = grown
        person_of[face_ids] = person_ids
        self._person_of = person_of  # one assignment: a search in another thread sees the old map or the new one

    def _people_of_graph(self, index: HnswIndex) -> np.ndarray:
        """The person of each graph position (-1 for faces this object never saw: removed before it opened)."""
        labels, person_of = index.labels, self._person_of
        out = np.full(len(labels), -1, np.int64)
        inside = labels < len(person_of)
        out[inside] = person_of[labels[inside]]
        return out

    def _adopt(self, loaded: tuple[HnswIndex, int, int, np.ndarray | None]) -> None:
        """Take a persisted index as current, with its faces' people (from its file, else from the store)."""
        self._index, self._index_seq, _, people = loaded
        if people is None:
            rows = self._conn().execute(
                "SELECT faces.id, faces.person_id FROM faces JOIN people ON people.id = faces.person_id "
                "WHERE people.collection_id = ?",
                (self._cid,),
            ).fetchall()
            self._note_people(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64), True)
        else:
            alive = people >= 0
            self._note_people(loaded[0].labels[alive], people[alive], fresh=True)

    def _rebuild(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN")  # one read snapshot: the faces and the log position agree
        try:
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            ids, vectors, people = self._read_vectors(conn)
        finally:
            conn.execute("COMMIT")
        self._note_people(ids, people, fresh=True)
        self._index = build_index(self._dim, ids, vectors, self._exact_limit)
        self._index_seq = int(seq)
        if isinstance(self._index, HnswIndex):
            self._save_index()
        else:
            self._files.remove()

    def _save_index(self) -> None:
        assert isinstance(self._index, HnswIndex)
        self._files.write(self._index, self._index_seq, self._people_of_graph(self._index))
        self._unsaved = 0

    def _open_index(self) -> None:
        """Load the persisted index (memory-mapped) or build one; either way then replay the change log."""
        loaded = self._files.read(self._dim)
        if loaded is None:
            self._rebuild()
        else:
            self._adopt(loaded)
        self._catch_up()
        if len(self._index) != self._store_face_count():
            log.warning("gallery index of %s disagrees with the store (%d vs %d faces); rebuilding",
                        self.location, len(self._index), self._store_face_count())
            self._rebuild()
            self._catch_up()

    def _catch_up(self) -> None:
        """Apply the change log after the index's position: adds, then removes, in order."""
        conn = self._conn()
        pruned = conn.execute("SELECT value FROM meta WHERE key = ?", (f"pruned_seq_{self._cid}",)).fetchone()
        if pruned and self._index_seq < int(pruned[0]):  # the log was compacted past us by a reindex elsewhere
            loaded = self._files.read(self._dim)
            if loaded is None or loaded[1] < int(pruned[0]):
                self._rebuild()
            else:
                self._adopt(loaded)
        rows = conn.execute(
            "SELECT seq, face_id, op FROM changes WHERE collection_id = ? AND seq > ? ORDER BY seq",
            (self._cid, self._index_seq),
        ).fetchall()
        if not rows:
            return
        index = self._index
        net: dict[int, int] = {}
        for _, face_id, op in rows:
            net[face_id] = net.get(face_id, 0) + op
        added = [f for f, v in net.items() if v > 0]
        removed = np.array([f for f, v in net.items() if v < 0], np.int64)
        if isinstance(index, HnswIndex) and index.mapped and added:
            index = self._index = self._writable(index)
        if added:
            ids, vectors, people = self._read_vectors(conn, added)
            self._note_people(ids, people)
            index.add(ids, vectors)
        if len(removed):
            index.remove(removed)
        self._index_seq = int(rows[-1][0])
        self._unsaved += len(rows)
        if isinstance(index, ExactIndex) and len(index) >= self._exact_limit:
            self._index = build_index(self._dim, index.ids, index.vectors, self._exact_limit)
            self._save_index()
        elif isinstance(index, HnswIndex) and (index.dead_share > TOMBSTONE_LIMIT or self._unsaved >= SAVE_EVERY):
            if index.dead_share > TOMBSTONE_LIMIT:
                self._index = build_index(self._dim, *index.live_vectors(), self._exact_limit)
            if isinstance(self._index, HnswIndex):
                self._save_index()

    def _writable(self, index: HnswIndex) -> HnswIndex:
        """A memory-mapped index is read-only: copy it into memory before adding to it."""
        import faiss

        copy = HnswIndex(self._dim, index=faiss.deserialize_index(faiss.serialize_index(index.index)),
                         tombstones=np.fromiter(index.tombstones, np.int64))
        return copy

    def _current_index(self) -> FaceIndex:
        with self._index_lock:
            version = self._version()
            if self._index is None:
                self._open_index()
            elif version != self._index_version:
                self._catch_up()
            self._index_version = version  # a commit landing meanwhile only means one more (empty) catch-up
            return self._index

    def reindex(self) -> dict[str, Any]:
        """Rebuild this collection's index from the store and compact its change log."""
        with self._index_lock:
            self._rebuild()
            if isinstance(self._index, ExactIndex) or self._files.manifest.exists():
                with self._write() as conn:
                    conn.execute("DELETE FROM changes WHERE collection_id = ? AND seq <= ?", (self._cid, self._index_seq))
                    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"pruned_seq_{self._cid}", str(self._index_seq)))
            self._index_version = self._version()
            return {"collection": self.collection, "faces": len(self._index), "index": self._index.kind}

    def index_kind(self) -> str:
        return self._current_index().kind

    def _allowed(self, where: dict[str, Any]) -> np.ndarray:
        clauses, params = [], [self._cid]
        for key, wanted in where.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            path = "$." + json.dumps(str(key))
            clauses.append(
                f"(json_extract(people.metadata, ?) IN ({','.join('?' * len(values))}))"
            )
            params += [path, *[v if not isinstance(v, bool) else int(v) for v in values]]
        rows = self._conn().execute(
            "SELECT faces.id FROM faces JOIN people ON people.id = faces.person_id WHERE people.collection_id = ? AND "
            + " AND ".join(clauses),
            params,
        ).fetchall()
        return np.array([r[0] for r in rows], np.int64)

    def _search_faces(self, vectors: np.ndarray, k: int, where: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        with self._index_lock:
            index = self._current_index()
            if not where:
                return index.search(vectors, k)
            allowed = self._allowed(where)
            if isinstance(index, HnswIndex) and len(allowed) < self._exact_limit:
                # a selective filter: exact search over the few allowed faces beats walking the graph around them
                ids, subset, _ = self._read_vectors(self._conn(), allowed.tolist())
                return ExactIndex(self._dim, ids, subset).search(vectors, k)
            return index.search(vectors, k, allowed)

    # -- reads and other writes ----------------------------------------------------------------------
    def _names_of(self, face_ids: Iterable[int]) -> dict[int, str]:
        owners = self._owners_of(face_ids)
        names = self._owner_names(set(owners.values()))
        return {face_id: names[person] for face_id, person in owners.items() if person in names}

    def _owners_of(self, face_ids: Iterable[int]) -> dict[int, int]:
        """Face id -> person id through the in-memory map (no query); faces this object has not indexed (another
        writer's newest, reached through a filter) from the store."""
        ids = np.fromiter(face_ids, np.int64)
        person_of = self._person_of
        people = np.full(len(ids), -1, np.int64)
        inside = ids < len(person_of)
        people[inside] = person_of[ids[inside]]
        known = people >= 0
        out = dict(zip(ids[known].tolist(), people[known].tolist()))
        unknown = ids[~known].tolist()
        conn = self._conn()
        for start in range(0, len(unknown), 900):
            chunk = unknown[start : start + 900]
            out.update(
                conn.execute(  # CROSS JOIN: faces by primary key first (the planner otherwise scans people)
                    f"SELECT faces.id, faces.person_id FROM faces CROSS JOIN people ON people.id = faces.person_id "
                    f"WHERE faces.id IN ({','.join('?' * len(chunk))}) AND people.collection_id = ?",
                    (*chunk, self._cid),
                ).fetchall()
            )
        return out

    def _owner_names(self, owners: Iterable[int]) -> dict[int, str]:
        """Names of people by id (people removed meanwhile are left out)."""
        wanted = list(owners)
        names: dict[int, str] = {}
        conn = self._conn()
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            # by primary key only: "AND collection_id = ?" made the planner scan the collection's people
            names.update(conn.execute(f"SELECT id, name FROM people WHERE id IN ({','.join('?' * len(chunk))})",
                                      chunk).fetchall())
        return names

    def _hash_exists(self, name: str, digest: str) -> bool:
        row = self._conn().execute(
            "SELECT 1 FROM faces JOIN people ON people.id = faces.person_id "
            "WHERE people.collection_id = ? AND people.name = ? AND content_hash = ?",
            (self._cid, name, digest),
        ).fetchone()
        return row is not None

    def _delete_person(self, name: str) -> int:
        with self._write() as conn:
            person_id = self._person_id(conn, name)
            face_ids = [r[0] for r in conn.execute("SELECT id FROM faces WHERE person_id = ?", (person_id,))]
            conn.execute("DELETE FROM faces WHERE person_id = ?", (person_id,))
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
            self._log(conn, face_ids, -1)
        return len(face_ids)

    def _purge(self) -> dict[str, Any]:
        """The index rebuilt from the store (its old files unlinked), then SQLite's deleted pages rewritten away:
        checkpoint the WAL, VACUUM (a fresh database file without free pages), checkpoint and truncate the WAL
        again, so neither the database, its free pages nor the WAL holds the deleted vectors."""
        index = self.reindex()
        conn = self._conn()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        busy = 1
        for _ in range(50):  # another connection reading right now delays the truncation a moment
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
            time.sleep(0.1)
        if busy:
            raise GalleryError(f"{self._db_path}: the write-ahead log could not be truncated while other "
                               "connections read it; the person is removed, run the erasure again to compact")
        return {"index": index, "vacuumed": True}

    def _delete_face(self, face_id: int) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT faces.id FROM faces JOIN people ON people.id = faces.person_id "
                "WHERE faces.id = ? AND people.collection_id = ?",
                (int(face_id), self._cid),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no face with id {face_id} in gallery {self.collection!r}")
            conn.execute("DELETE FROM faces WHERE id = ?", (int(face_id),))
            self._log(conn, [int(face_id)], -1)

    def _rename(self, old: str, new: str) -> None:
        with self._write() as conn:
            person_id = self._person_id(conn, old)
            if conn.execute("SELECT 1 FROM people WHERE collection_id = ? AND name = ?", (self._cid, new)).fetchone():
                raise GalleryError(f"{new!r} already exists in gallery {self.collection!r}; remove or rename it first")
            conn.execute("UPDATE people SET name = ? WHERE id = ?", (new, person_id))

    def _people_query(self, extra: str = "", params: Sequence[Any] = ()) -> list[Person]:
        rows = self._conn().execute(
            "SELECT people.name, COUNT(faces.id), people.metadata, people.created_at FROM people "
            "LEFT JOIN faces ON faces.person_id = people.id WHERE people.collection_id = ? "
            + extra + " GROUP BY people.id ORDER BY people.name",
            (self._cid, *params),
        ).fetchall()
        return [Person(name=r[0], face_count=int(r[1]), metadata=json.loads(r[2]), created_at=r[3]) for r in rows]

    def people(self, where: dict[str, Any] | None = None) -> list[Person]:
        from facelens.gallery.base import matches

        return [p for p in self._people_query() if matches(p.metadata, where)]

    def person(self, name: str) -> Person:
        found = self._people_query("AND people.name = ?", (name,))
        if not found:
            raise NotFoundError(f"no person named {name!r} in gallery {self.collection!r}")
        return found[0]

    def faces(
        self, name: str | None = None, with_embeddings: bool = False, after_id: int = 0, limit: int | None = None
    ) -> list[FaceRecord]:
        conn = self._conn()
        query = (
            "SELECT faces.id, people.name, faces.source, faces.content_hash, faces.box, faces.score, faces.added_at"
            + (", faces.embedding" if with_embeddings else "")
            + " FROM faces JOIN people ON people.id = faces.person_id WHERE people.collection_id = ? AND faces.id > ?"
        )
        params: list[Any] = [self._cid, int(after_id)]
        if name is not None:
            query += " AND faces.person_id = ?"
            params.append(self._person_id(conn, name))
        query += " ORDER BY faces.id" + (f" LIMIT {int(limit)}" if limit is not None else "")
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
            for r in conn.execute(query, params).fetchall()
        ]

    def face_count(self) -> int:
        """Faces in the collection, from the caught-up index (a COUNT over a million rows costs ~50 ms)."""
        return len(self._current_index())

    def _store_face_count(self) -> int:
        return int(
            self._conn()
            .execute(
                "SELECT COUNT(*) FROM faces JOIN people ON people.id = faces.person_id WHERE people.collection_id = ?",
                (self._cid,),
            )
            .fetchone()[0]
        )

    # -- the photo library (facelens.gallery.library) ------------------------------------------------
    def _library_sql(self) -> Any:
        sql = getattr(self, "_library_statements", None)
        if sql is None:
            from facelens.gallery.library import LibrarySQL

            sql = LibrarySQL("sqlite", self._cid, "people", "faces")
            with self._write() as conn:
                sql.create(conn)
            self._library_statements = sql
        return sql

    def _library_exists(self) -> bool:
        if getattr(self, "_library_statements", None) is not None:
            return True
        return self._conn().execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'facelens_constraints'").fetchone() is not None

    @contextmanager
    def _library(self, write: bool = True) -> Iterator[tuple[sqlite3.Connection, Any]]:
        sql = self._library_sql()
        if not write:
            yield self._conn(), sql
            return
        with self._write() as conn:
            yield conn, sql

    def _drop_faces(self, conn: sqlite3.Connection, face_ids: list[int]) -> None:
        for start in range(0, len(face_ids), 900):
            chunk = [int(i) for i in face_ids[start : start + 900]]
            conn.execute(f"DELETE FROM faces WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        self._log(conn, face_ids, -1)
