"""The SQLite connection: WAL, one writer, ``transaction()`` as the only way to write.

The daemon calls into the store from its event-loop thread and from worker threads, so the
connection is shared under a re-entrant lock. Statements are small; none is long-running.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dockyard.errors import Internal
from dockyard.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Database"]


class Database:
    """An open state database. ``path`` may be ``":memory:"`` in tests."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._depth = 0
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (kill -9); only a
        # power loss may drop the last transactions, never corrupt the file.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction() as cur:
            cur.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'")
            version = 0
            if cur.fetchone():
                row = cur.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise Internal(
                    f"state database {self.path} has schema version {version}, "
                    f"newer than this dockyard ({SCHEMA_VERSION})"
                )
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[v]:
                    cur.execute(stmt)
                cur.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                    (str(v),),
                )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction (BEGIN IMMEDIATE … COMMIT); nested calls join the outer one."""
        with self._lock:
            cur = self._conn.cursor()
            outer = self._depth == 0
            if outer:
                cur.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield cur
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.rollback()
                raise
            else:
                self._depth -= 1
                if outer:
                    self._conn.commit()
            finally:
                cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def close(self) -> None:
        with self._lock:
            self._conn.close()
