"""API keys: random secrets shown once, stored as SHA-256 hashes with a scope, in a SQLite file or PostgreSQL.

A key reads ``fl_<id>_<secret>``: the id finds the row, the secret is compared in constant time with the stored hash.
Secrets are 256 random bits, so a fast hash is enough (no password stretching needed, nothing to brute-force).
Replicas share keys through the gallery's PostgreSQL database (table ``facelens_api_keys``), or through a SQLite
file on a shared volume (WAL mode, short transactions).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facelens.errors import FacelensError, NotFoundError
from facelens.gallery import is_postgres
from facelens.gallery.local import use_wal

SCOPES = ("identify", "admin")
PREFIX = "fl"


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret): ``scope`` ``identify`` is read-only, ``admin`` may change galleries."""

    key_id: str
    scope: str
    name: str
    created_at: float
    revoked_at: float | None = None

    def allows(self, scope: str) -> bool:
        return self.scope == "admin" or self.scope == scope

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Create, check, list and revoke API keys at ``location`` (a SQLite file path or a ``postgresql://`` URL).
    Safe to share between threads (a SQLite connection per thread; a pooled connection per PostgreSQL call)."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self._local = threading.local()
        self._pool = None
        if is_postgres(self.location):
            from facelens.errors import redact_url
            from facelens.gallery.postgres import SCHEMA_LOCK, connection_pool

            self._where = redact_url(self.location)
            self._pool = connection_pool(self.location)
            with self._pool.connection() as conn, conn.transaction():
                # replicas starting together would otherwise race to create the table (a unique violation in pg_type)
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS facelens_api_keys (key_id TEXT PRIMARY KEY, "
                             "secret_sha256 TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL, "
                             "created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)")
        else:
            path = Path(self.location).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.location = self._where = str(path)
            self._write("CREATE TABLE IF NOT EXISTS facelens_api_keys (key_id TEXT PRIMARY KEY, "
                        "secret_sha256 TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL, "
                        "created_at REAL NOT NULL, revoked_at REAL)")

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.location, timeout=30.0, check_same_thread=False)
                use_wal(conn)
            except sqlite3.DatabaseError as exc:
                raise FacelensError(f"{self.location} is not a readable key store ({exc})") from exc
            self._local.conn = conn
        return conn

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self._pool is not None:
            with self._pool.connection() as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        return self._sqlite().execute(sql, params).fetchall()

    def _write(self, sql: str, params: tuple = ()) -> int:
        """Run one statement in its own transaction; the number of rows it changed."""
        if self._pool is not None:
            with self._pool.connection() as conn:
                return conn.execute(sql.replace("?", "%s"), params).rowcount
        with self._sqlite() as conn:
            return conn.execute(sql, params).rowcount

    def create(self, scope: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key; returns it and the full secret token (shown once, never stored)."""
        if scope not in SCOPES:
            raise FacelensError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id=key_id, scope=scope, name=name, created_at=time.time())
        self._write("INSERT INTO facelens_api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                    (key_id, _hash(secret), scope, name, key.created_at))
        return key, f"{PREFIX}_{key_id}_{secret}"

    def check(self, token: str) -> ApiKey | None:
        """The live key a token belongs to, or None (malformed, unknown, wrong secret or revoked)."""
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        rows = self._read("SELECT key_id, secret_sha256, scope, name, created_at, revoked_at FROM facelens_api_keys "
                          "WHERE key_id = ?", (parts[1],))
        if not rows or rows[0][5] is not None:
            return None
        row = rows[0]
        if not hmac.compare_digest(row[1], _hash(parts[2])):
            return None
        return ApiKey(row[0], row[2], row[3], row[4], None)

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        query = "SELECT key_id, scope, name, created_at, revoked_at FROM facelens_api_keys"
        if not include_revoked:
            query += " WHERE revoked_at IS NULL"
        return [ApiKey(*row) for row in self._read(query + " ORDER BY created_at")]

    def revoke(self, key_id: str) -> ApiKey:
        changed = self._write("UPDATE facelens_api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                              (time.time(), key_id))
        if not changed:
            raise NotFoundError(f"no active API key with id {key_id!r} in {self._where}")
        rows = self._read("SELECT key_id, scope, name, created_at, revoked_at FROM facelens_api_keys WHERE key_id = ?",
                          (key_id,))
        return ApiKey(*rows[0])

    def close(self) -> None:
        """Close this thread's SQLite connection (PostgreSQL pools are closed with the gallery pools)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
