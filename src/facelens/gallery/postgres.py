"""The server gallery: PostgreSQL + pgvector, for galleries shared by several processes, machines or service replicas.

Same interface and answers as the folder gallery. Every collection gets its own partial HNSW index
(``embedding::vector(dim)``, inner product, ``WHERE collection_id = …``), so tenants with different models and
dimensions share the tables. Writes are single transactions (people upserted, so concurrent enrolments of the
same new name meet in one row); a connection pool serves threads; vectors travel in pgvector's binary format, so
they come back bit-identical.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from facelens.errors import GalleryError, NotFoundError, redact_url
from facelens.gallery.base import FaceRecord, Gallery, NewFaces, Person, new_collection_model, now

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: pgvector HNSW parameters; `python benchmarks/gallery.py`: recall@10 at 100k faces 0.984 with ef_search 100,
#: 0.995 with 200 (p50 9.8 ms).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
EF_SEARCH = 200
COUNT_TTL_S = 1.0
#: Advisory lock key (any constant) taken while creating or migrating the schema.
SCHEMA_LOCK = 0x66616365

_SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE IF NOT EXISTS facelens_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS facelens_collections (
        id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, model_id TEXT NOT NULL, dim INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS facelens_people (
        id BIGSERIAL PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES facelens_collections(id) ON DELETE CASCADE,
        name TEXT NOT NULL, metadata JSONB NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL,
        UNIQUE (collection_id, name))""",
    """CREATE TABLE IF NOT EXISTS facelens_faces (
        id BIGSERIAL PRIMARY KEY,
        person_id BIGINT NOT NULL REFERENCES facelens_people(id) ON DELETE CASCADE,
        collection_id INTEGER NOT NULL,
        embedding VECTOR NOT NULL,
        source TEXT NOT NULL DEFAULT '', content_hash TEXT NOT NULL DEFAULT '', box JSONB NOT NULL DEFAULT '[]',
        score DOUBLE PRECISION NOT NULL DEFAULT 0, added_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS facelens_faces_person ON facelens_faces(person_id)",
    "CREATE INDEX IF NOT EXISTS facelens_faces_hash ON facelens_faces(collection_id, content_hash)",
    "CREATE INDEX IF NOT EXISTS facelens_people_metadata ON facelens_people USING gin (metadata)",
]

_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()


def connection_pool(url: str):  # noqa: ANN202 - psycopg_pool.ConnectionPool
    """One connection pool per URL per process, with the schema in place."""
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            try:
                import psycopg
                from pgvector.psycopg import register_vector
                from psycopg_pool import ConnectionPool
            except ImportError as exc:
                raise GalleryError(
                    "PostgreSQL galleries need psycopg, psycopg-pool and pgvector: pip install 'facelens[postgres]'"
                ) from exc
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                    _migrate(conn)
            except psycopg.OperationalError as exc:
                raise GalleryError(f"cannot connect to {redact_url(url)}: {str(exc).strip()}") from exc
            pool = ConnectionPool(url, min_size=1, max_size=8, configure=register_vector, open=True, timeout=30)
            _pools[url] = pool
        return pool


def _migrate(conn: Any) -> None:
    """Create or upgrade the schema, and do nothing when it is current.

    ``CREATE INDEX IF NOT EXISTS`` locks its table before it looks for the index, so running the DDL while another
    process writes would take SHARE locks on faces then people against the writer's people-then-faces order and
    deadlock; a current schema is therefore left untouched.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        if conn.execute("SELECT to_regclass('facelens_meta') IS NOT NULL").fetchone()[0]:
            row = conn.execute("SELECT value FROM facelens_meta WHERE key = 'schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise GalleryError(
                    f"gallery schema {row[0]} is newer than this facelens ({SCHEMA_VERSION}); upgrade facelens"
                )
            if row is not None and int(row[0]) == SCHEMA_VERSION:
                return
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO facelens_meta VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (str(SCHEMA_VERSION),),
        )


def list_collections(url: str) -> list[str]:
    with connection_pool(url).connection() as conn:
        return [r[0] for r in conn.execute("SELECT name FROM facelens_collections ORDER BY name")]


def drop_collection(url: str, collection: str) -> int:
    with connection_pool(url).connection() as conn, conn.transaction():
        row = conn.execute("SELECT id FROM facelens_collections WHERE name = %s", (collection,)).fetchone()
        if row is None:
            raise NotFoundError(f"no gallery (collection) {collection!r} here")
        count = conn.execute("SELECT COUNT(*) FROM facelens_faces WHERE collection_id = %s", (row[0],)).fetchone()[0]
        conn.execute("DELETE FROM facelens_faces WHERE collection_id = %s", (row[0],))
        conn.execute(f"DROP INDEX IF EXISTS facelens_faces_hnsw_{int(row[0])}")
        conn.execute("DELETE FROM facelens_collections WHERE id = %s", (row[0],))
        return int(count)


def _as_array(value: Any) -> np.ndarray:
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, np.float32)


def _where_sql(where: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """Metadata equality (list value = any of) as JSONB containment the GIN index can serve."""
    if not where:
        return "", []
    clauses, params = [], []
    for key, wanted in where.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        clauses.append("(" + " OR ".join(["p.metadata @> %s::jsonb"] * len(values)) + ")")
        params += [json.dumps({str(key): v}) for v in values]
    return " AND " + " AND ".join(clauses), params


class PostgresGallery(Gallery):
    def __init__(
        self, url: str, model_id: str | None = None, create: bool = True, dim: int | None = None,
        collection: str = "default",
    ) -> None:
        self.url = url
        self.location = redact_url(url)
        self.collection = collection
        self._pool = connection_pool(url)
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            row = conn.execute(
                "SELECT id, model_id, dim FROM facelens_collections WHERE name = %s", (collection,)
            ).fetchone()
            if row is None:
                if not create:
                    raise NotFoundError(f"no gallery (collection) {collection!r} here")
                row = conn.execute(
                    "INSERT INTO facelens_collections (name, model_id, dim, created_at) VALUES (%s, %s, %s, %s) "
                    "RETURNING id, model_id, dim",
                    (collection, *new_collection_model(model_id, dim), now()),
                ).fetchone()
                cid, d = int(row[0]), int(row[2])
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS facelens_faces_hnsw_{cid} ON facelens_faces "
                    f"USING hnsw ((embedding::vector({d})) vector_ip_ops) "
                    f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE collection_id = {cid}"
                )
        self._cid, self.model_id, self._dim = int(row[0]), str(row[1]), int(row[2])
        self.ef_search = EF_SEARCH
        self._count_cache: tuple[int, float] | None = None
        if model_id is not None:
            self.check_model(model_id)

    @property
    def dim(self) -> int:
        return self._dim

    def close(self) -> None:
        """Connections stay pooled for the process (other gallery objects on this URL share them)."""

    def _person_id(self, conn: Any, name: str, lock: bool = False) -> int:
        row = conn.execute(
            "SELECT id FROM facelens_people WHERE collection_id = %s AND name = %s" + (" FOR UPDATE" if lock else ""),
            (self._cid, name),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no person named {name!r} in gallery {self.collection!r}")
        return int(row[0])

    # -- primitives ----------------------------------------------------------------------------------
    def _upsert_person(self, conn, item: NewFaces, stamp) -> int:
        """The person's id, the row created or its metadata merged; the row stays locked until the transaction ends,
        so a concurrent write of this person waits for it."""
        return conn.execute(
            "INSERT INTO facelens_people (collection_id, name, metadata, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (collection_id, name) DO UPDATE SET metadata = facelens_people.metadata || "
            "EXCLUDED.metadata RETURNING id",
            (self._cid, item.name, json.dumps(item.metadata or {}), stamp),
        ).fetchone()[0]

    def _insert_people(self, batch: Sequence[NewFaces]) -> list[list[int]]:
        self._count_cache = None
        stamp = now()
        out: list[list[int]] = [[] for _ in batch]
        with self._pool.connection() as conn, conn.transaction():
            # people rows are locked in name order, so two batches naming the same people cannot deadlock
            for position in sorted(range(len(batch)), key=lambda i: batch[i].name):
                item = batch[position]
                person_id = self._upsert_person(conn, item, stamp)
                rows = [
                    (
                        person_id,
                        self._cid,
                        np.asarray(vector, np.float32),
                        face.get("source", ""),
                        face.get("content_hash", ""),
                        json.dumps(face.get("box", [])),
                        float(face.get("score", 0.0)),
                        face.get("added_at", stamp),
                    )
                    for vector, face in zip(item.vectors, item.faces)
                ]
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO facelens_faces (person_id, collection_id, embedding, source, content_hash, box, "
                        "score, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                        rows,
                        returning=True,
                    )
                    ids = []
                    while True:
                        ids.append(int(cur.fetchone()[0]))
                        if not cur.nextset():
                            break
                for face, face_id in zip(item.faces, ids):  # library faces joining a person: linked in this tx
                    if face.get("detection_id") is not None:
                        self._library_sql().link(conn, face["detection_id"], face_id)
                out[position] = ids
        return out

    def add_faces_once(self, batch: Sequence[NewFaces]) -> list[list[tuple[int, str | None]]]:
        """Add each face unless its person holds one with the same content hash and box already; the whole batch in
        one transaction, so a write repeated (a retried chunk of a distributed enrolment) adds nothing twice.
        Per face: (new face id, None), or (the existing face's id, its source)."""
        self._count_cache = None
        stamp = now()
        out: list[list[tuple[int, str | None]]] = [[] for _ in batch]
        with self._pool.connection() as conn, conn.transaction():
            for position in sorted(range(len(batch)), key=lambda i: batch[i].name):  # lock order: no deadlock
                item = batch[position]
                # the upsert locks the person's row until commit: a concurrent write of this person waits here,
                # then (read committed) sees the faces this one added
                person_id = self._upsert_person(conn, item, stamp)
                for vector, face in zip(item.vectors, item.faces):
                    box = json.dumps(face.get("box", []))
                    found = conn.execute(
                        "SELECT id, source FROM facelens_faces WHERE collection_id = %s AND content_hash = %s AND "
                        "person_id = %s AND box = %s::jsonb ORDER BY id LIMIT 1",  # the (collection, hash) index
                        (self._cid, face.get("content_hash", ""), person_id, box),
                    ).fetchone()
                    if found is not None:
                        out[position].append((int(found[0]), found[1]))
                        continue
                    face_id = conn.execute(
                        "INSERT INTO facelens_faces (person_id, collection_id, embedding, source, content_hash, box, "
                        "score, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                        (person_id, self._cid, np.asarray(vector, np.float32), face.get("source", ""),
                         face.get("content_hash", ""), box, float(face.get("score", 0.0)), stamp),
                    ).fetchone()[0]
                    out[position].append((int(face_id), None))
        return out

    def _add_person(self, name: str, metadata: dict[str, Any]) -> None:
        with self._pool.connection() as conn, conn.transaction():
            done = conn.execute(
                "INSERT INTO facelens_people (collection_id, name, metadata, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (collection_id, name) DO NOTHING RETURNING id",
                (self._cid, name, json.dumps(metadata), now()),
            ).fetchone()
            if done is None:
                raise GalleryError(f"{name!r} already exists in gallery {self.collection!r}")

    def _update_person(self, name: str, metadata: dict[str, Any]) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE facelens_people SET metadata = %s WHERE id = %s", (json.dumps(metadata), self._person_id(conn, name))
            )

    def _search_faces(self, vectors: np.ndarray, k: int, where: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(vectors), k), -np.inf, np.float32)
        ids = np.full((len(vectors), k), -1, np.int64)
        filter_sql, filter_params = _where_sql(where)
        d = self._dim
        sql = (
            f"SELECT f.id, -(f.embedding::vector({d}) <#> %s::vector({d})) FROM facelens_faces f "
            + ("JOIN facelens_people p ON p.id = f.person_id " if where else "")
            + f"WHERE f.collection_id = %s{filter_sql} ORDER BY f.embedding::vector({d}) <#> %s::vector({d}) LIMIT %s"
        )
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(int(self.ef_search), int(k))}")
            if where:
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            for row, vector in enumerate(np.asarray(vectors, np.float32)):
                hits = conn.execute(sql, (vector, self._cid, *filter_params, vector, k)).fetchall()
                hits.sort(key=lambda h: -h[1])  # relaxed order under filters
                for col, (face_id, score) in enumerate(hits[:k]):
                    ids[row, col], scores[row, col] = face_id, score
        return scores, ids

    def _names_of(self, face_ids: Iterable[int]) -> dict[int, str]:
        ids = [int(i) for i in face_ids]
        if not ids:
            return {}
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT f.id, p.name FROM facelens_faces f JOIN facelens_people p ON p.id = f.person_id "
                "WHERE f.collection_id = %s AND f.id = ANY(%s)",
                (self._cid, ids),
            ).fetchall()
        return {int(a): b for a, b in rows}

    def _hash_exists(self, name: str, digest: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM facelens_faces f JOIN facelens_people p ON p.id = f.person_id "
                "WHERE f.collection_id = %s AND p.name = %s AND f.content_hash = %s",
                (self._cid, name, digest),
            ).fetchone()
        return row is not None

    def _delete_person(self, name: str) -> int:
        self._count_cache = None
        with self._pool.connection() as conn, conn.transaction():
            person_id = self._person_id(conn, name, lock=True)
            count = conn.execute("DELETE FROM facelens_faces WHERE person_id = %s", (person_id,)).rowcount
            conn.execute("DELETE FROM facelens_people WHERE id = %s", (person_id,))
        return int(count)

    def _delete_face(self, face_id: int) -> None:
        self._count_cache = None
        with self._pool.connection() as conn, conn.transaction():
            gone = conn.execute(
                "DELETE FROM facelens_faces WHERE id = %s AND collection_id = %s", (int(face_id), self._cid)
            ).rowcount
            if not gone:
                raise NotFoundError(f"no face with id {face_id} in gallery {self.collection!r}")

    def _rename(self, old: str, new: str) -> None:
        import psycopg

        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("UPDATE facelens_people SET name = %s WHERE id = %s", (new, self._person_id(conn, old, lock=True)))
        except psycopg.errors.UniqueViolation as exc:
            raise GalleryError(f"{new!r} already exists in gallery {self.collection!r}; remove or rename it first") from exc

    # -- the photo library (facelens.gallery.library) ------------------------------------------------
    def _library_sql(self) -> Any:
        sql = getattr(self, "_library_statements", None)
        if sql is None:
            from facelens.gallery.library import LibrarySQL

            sql = LibrarySQL("postgres", self._cid, "facelens_people", "facelens_faces")
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                if not conn.execute("SELECT to_regclass('facelens_constraints') IS NOT NULL").fetchone()[0]:
                    sql.create(conn)
            self._library_statements = sql
        return sql

    def _library_exists(self) -> bool:
        if getattr(self, "_library_statements", None) is not None:
            return True
        with self._pool.connection() as conn:
            return bool(conn.execute("SELECT to_regclass('facelens_constraints') IS NOT NULL").fetchone()[0])

    @contextmanager
    def _library(self, write: bool = True) -> Iterator[tuple[Any, Any]]:
        sql = self._library_sql()
        with self._pool.connection() as conn, conn.transaction():
            yield conn, sql
        if write:
            self._count_cache = None

    def _drop_faces(self, conn: Any, face_ids: list[int]) -> None:
        self._count_cache = None
        conn.execute("DELETE FROM facelens_faces WHERE collection_id = %s AND id = ANY(%s)",
                     (self._cid, [int(i) for i in face_ids]))

    def _people_query(self, extra: str = "", params: Sequence[Any] = ()) -> list[Person]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT p.name, COUNT(f.id), p.metadata, p.created_at FROM facelens_people p "
                "LEFT JOIN facelens_faces f ON f.person_id = p.id WHERE p.collection_id = %s"
                + extra + " GROUP BY p.id ORDER BY p.name",
                (self._cid, *params),
            ).fetchall()
        return [Person(name=r[0], face_count=int(r[1]), metadata=r[2], created_at=r[3]) for r in rows]

    def people(self, where: dict[str, Any] | None = None) -> list[Person]:
        filter_sql, params = _where_sql(where)
        return self._people_query(filter_sql, params)

    def person(self, name: str) -> Person:
        found = self._people_query(" AND p.name = %s", (name,))
        if not found:
            raise NotFoundError(f"no person named {name!r} in gallery {self.collection!r}")
        return found[0]

    def faces(
        self, name: str | None = None, with_embeddings: bool = False, after_id: int = 0, limit: int | None = None
    ) -> list[FaceRecord]:
        with self._pool.connection() as conn:
            query = (
                "SELECT f.id, p.name, f.source, f.content_hash, f.box, f.score, f.added_at"
                + (", f.embedding" if with_embeddings else "")
                + " FROM facelens_faces f JOIN facelens_people p ON p.id = f.person_id "
                "WHERE f.collection_id = %s AND f.id > %s"
            )
            params: list[Any] = [self._cid, int(after_id)]
            if name is not None:
                query += " AND f.person_id = %s"
                params.append(self._person_id(conn, name))
            query += " ORDER BY f.id" + (f" LIMIT {int(limit)}" if limit is not None else "")
            rows = conn.execute(query, params).fetchall()
        return [
            FaceRecord(
                face_id=int(r[0]),
                name=r[1],
                source=r[2],
                content_hash=r[3],
                box=r[4],
                score=float(r[5]),
                added_at=r[6],
                embedding=_as_array(r[7]) if with_embeddings else None,
            )
            for r in rows
        ]

    def face_count(self) -> int:
        """Faces in the collection; cached for a second (open-set thresholds need it per query, and other
        replicas' writes shift it only slowly)."""
        cached = self._count_cache
        if cached is not None and time.monotonic() - cached[1] < COUNT_TTL_S:
            return cached[0]
        with self._pool.connection() as conn:
            count = int(
                conn.execute("SELECT COUNT(*) FROM facelens_faces WHERE collection_id = %s", (self._cid,)).fetchone()[0]
            )
        self._count_cache = (count, time.monotonic())
        return count

    def _purge(self) -> dict[str, Any]:
        """``VACUUM FULL`` the faces table: PostgreSQL rewrites it (and its indexes, the HNSW graph included) into
        new files without the deleted rows, and drops the old ones; then a checkpoint, where the role may run one,
        so the WAL segments that held them get recycled. Locks the faces table of every collection meanwhile."""
        with self._pool.connection() as conn:
            conn.commit()
            previous, conn.autocommit = conn.autocommit, True
            try:
                conn.execute("VACUUM FULL facelens_faces")
                try:
                    conn.execute("CHECKPOINT")
                    checkpoint = True
                except Exception:  # noqa: BLE001  (needs superuser or pg_checkpoint: the rows are gone already)
                    checkpoint = False
            finally:
                conn.autocommit = previous
        return {"index": {"collection": self.collection, "faces": self.face_count(), "index": "pgvector-hnsw"},
                "vacuumed": True, "checkpoint": checkpoint}

    def reindex(self) -> dict[str, Any]:
        """Rebuild the collection's HNSW index (``REINDEX``), e.g. after very many deletions."""
        with self._pool.connection() as conn:
            conn.execute(f"REINDEX INDEX facelens_faces_hnsw_{self._cid}")
        return {"collection": self.collection, "faces": self.face_count(), "index": "pgvector-hnsw"}


def close_pools() -> None:
    """Close this process's connection pools (before the server goes away, e.g. at the end of a test session)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
