"""Container records: one row per container, the document is engine-owned JSON."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from dockyard.errors import AlreadyExists
from dockyard.store.db import Database

__all__ = ["ContainerRecords"]


class ContainerRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, cid: str, name: str, image_id: str, created: str, doc: dict[str, Any]) -> None:
        """Add a container; AlreadyExists if the id or the name is taken."""
        try:
            with self.db.transaction() as cur:
                cur.execute(
                    "INSERT INTO containers(id, name, image_id, created, doc) VALUES(?,?,?,?,?)",
                    (cid, name, image_id, created, json.dumps(doc)),
                )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"container {name} or {cid} exists already") from exc

    def update(self, cid: str, name: str, doc: dict[str, Any]) -> None:
        try:
            with self.db.transaction() as cur:
                cur.execute(
                    "UPDATE containers SET name=?, doc=? WHERE id=?", (name, json.dumps(doc), cid)
                )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"container name {name} is taken") from exc

    def delete(self, cid: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM containers WHERE id=?", (cid,))

    def all(self) -> list[dict[str, Any]]:
        """Every container document, oldest first."""
        rows = self.db.query("SELECT doc FROM containers ORDER BY created")
        return [dict(json.loads(r["doc"])) for r in rows]

    def image_users(self, image_id: str) -> list[str]:
        return [
            r["id"]
            for r in self.db.query("SELECT id FROM containers WHERE image_id=?", (image_id,))
        ]
