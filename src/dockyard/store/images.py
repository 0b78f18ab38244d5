"""Typed accessors for the image tables (``images``, ``image_refs``, ``layers``) and the
snapshotter's table (``snapshots``). The schema is drawn in ``dockyard.store.schema``.

Only this module runs SQL against those four tables. Rows come back as frozen dataclasses;
JSON columns are decoded. Every write is one transaction; callers that need several
writes to land together pass them in one call (``add_image`` writes the image and its
names at once).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import AlreadyExists, NotFound
from dockyard.store.db import Database

__all__ = [
    "ImageRecords",
    "ImageRow",
    "LayerRow",
    "RefRow",
    "SnapshotRecords",
    "SnapshotRow",
]


@dataclass(frozen=True)
class ImageRow:
    id: str                      # 'sha256:<hex>' (digest of the config blob)
    created: int                 # config "created", unix seconds
    added: int                   # unix seconds stored locally
    parent: str = ""             # parent image id, '' if none
    chain_id: str = ""           # top layer's chain id, '' when the image has no layers
    size: int = 0                # unpacked size of all layers
    doc: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefRow:
    ref: str                     # normalised 'domain/path:tag' or 'domain/path@digest'
    image_id: str
    kind: str                    # 'tag' | 'digest'
    created: int


@dataclass(frozen=True)
class LayerRow:
    chain_id: str
    diff_id: str
    parent: str                  # chain id of the layer below, '' for a base layer
    snapshot: str                # committed snapshot key
    size: int = 0
    blob: str = ""
    media_type: str = ""


@dataclass(frozen=True)
class SnapshotRow:
    key: str
    num: int
    parent: str
    kind: str                    # 'active' | 'view' | 'committed'
    created: int
    labels: dict[str, str] = field(default_factory=dict)


def _image(row: sqlite3.Row) -> ImageRow:
    return ImageRow(
        id=row["id"], created=int(row["created"]), added=int(row["added"]),
        parent=row["parent"], chain_id=row["chain_id"], size=int(row["size"]),
        doc=json.loads(row["doc"] or "{}"),
    )


def _ref(row: sqlite3.Row) -> RefRow:
    return RefRow(ref=row["ref"], image_id=row["image_id"], kind=row["kind"],
                  created=int(row["created"]))


def _layer(row: sqlite3.Row) -> LayerRow:
    return LayerRow(
        chain_id=row["chain_id"], diff_id=row["diff_id"], parent=row["parent"],
        snapshot=row["snapshot"], size=int(row["size"]), blob=row["blob"],
        media_type=row["media_type"],
    )


def _snapshot(row: sqlite3.Row) -> SnapshotRow:
    return SnapshotRow(
        key=row["key"], num=int(row["num"]), parent=row["parent"], kind=row["kind"],
        created=int(row["created"]), labels=json.loads(row["labels"] or "{}"),
    )


def _dump(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


class ImageRecords:
    """Images, their names, and the unpacked layer stacks."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- images ------------------------------------------------------------------------

    def add_image(self, row: ImageRow, refs: Sequence[RefRow] = ()) -> dict[str, str]:
        """Insert the image (or keep the existing row with that id) and point ``refs`` at it.

        Returns ``{ref: previous image id}`` for each name that was moved from another
        image, so the caller can report what became dangling.
        """
        moved: dict[str, str] = {}
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO images(id, created, added, parent, chain_id, size, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.id, row.created, row.added, row.parent, row.chain_id, row.size,
                 _dump(row.doc)),
            )
            for r in refs:
                prev = self._set_ref(cur, r)
                if prev and prev != r.image_id:
                    moved[r.ref] = prev
        return moved

    def get_image(self, image_id: str) -> ImageRow | None:
        row = self.db.query_one("SELECT * FROM images WHERE id = ?", (image_id,))
        return _image(row) if row else None

    def list_images(self) -> list[ImageRow]:
        return [_image(r) for r in self.db.query("SELECT * FROM images ORDER BY created DESC, id")]

    def chain_has_image(self, chain_id: str) -> bool:
        """Whether some image's top layer is ``chain_id`` (its layers are then in use)."""
        row = self.db.query_one("SELECT 1 FROM images WHERE chain_id = ? LIMIT 1", (chain_id,))
        return row is not None

    def image_ids(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT id FROM images")]

    def children(self, image_id: str) -> list[str]:
        """Ids of the images whose parent is ``image_id``."""
        return [r[0] for r in self.db.query("SELECT id FROM images WHERE parent = ?", (image_id,))]

    def update_doc(self, image_id: str, doc: dict[str, Any]) -> bool:
        """Replace an image's ``doc`` (what a push or a pull learnt: manifests, sources);
        False if the image is gone."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE images SET doc = ? WHERE id = ?", (_dump(doc), image_id))
            return cur.rowcount > 0

    def delete_image(self, image_id: str) -> bool:
        """Delete the image and (by cascade) every name pointing at it."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM images WHERE id = ?", (image_id,))
            return cur.rowcount > 0

    # -- names -------------------------------------------------------------------------

    @staticmethod
    def _set_ref(cur: sqlite3.Cursor, r: RefRow) -> str | None:
        old = cur.execute("SELECT image_id FROM image_refs WHERE ref = ?", (r.ref,)).fetchone()
        if old and old[0] == r.image_id:
            return old[0]  # type: ignore[no-any-return]
        cur.execute(
            "INSERT OR REPLACE INTO image_refs(ref, image_id, kind, created) VALUES (?, ?, ?, ?)",
            (r.ref, r.image_id, r.kind, r.created),
        )
        return old[0] if old else None

    def set_ref(self, r: RefRow) -> str | None:
        """Point a name at an image; returns the image it pointed at before, if any.
        NotFound if the image does not exist."""
        with self.db.transaction() as cur:
            if not cur.execute("SELECT 1 FROM images WHERE id = ?", (r.image_id,)).fetchone():
                raise NotFound(f"no such image: {r.image_id}")
            return self._set_ref(cur, r)

    def get_ref(self, ref: str) -> RefRow | None:
        row = self.db.query_one("SELECT * FROM image_refs WHERE ref = ?", (ref,))
        return _ref(row) if row else None

    def refs_of(self, image_id: str) -> list[RefRow]:
        """The names of an image, oldest first (docker lists them in insertion order)."""
        return [_ref(r) for r in self.db.query(
            "SELECT * FROM image_refs WHERE image_id = ? ORDER BY created, rowid", (image_id,))]

    def all_refs(self) -> list[RefRow]:
        return [_ref(r) for r in self.db.query("SELECT * FROM image_refs ORDER BY created, rowid")]

    def delete_ref(self, ref: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM image_refs WHERE ref = ?", (ref,))
            return cur.rowcount > 0

    # -- layers ------------------------------------------------------------------------

    def add_layer(self, row: LayerRow) -> bool:
        """Record an unpacked layer; False if a row for that chain id exists already."""
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO layers(chain_id, diff_id, parent, snapshot, size, blob,"
                " media_type) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.chain_id, row.diff_id, row.parent, row.snapshot, row.size, row.blob,
                 row.media_type),
            )
            return cur.rowcount > 0

    def get_layer(self, chain_id: str) -> LayerRow | None:
        row = self.db.query_one("SELECT * FROM layers WHERE chain_id = ?", (chain_id,))
        return _layer(row) if row else None

    def list_layers(self) -> list[LayerRow]:
        return [_layer(r) for r in self.db.query("SELECT * FROM layers")]

    def delete_layer(self, chain_id: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM layers WHERE chain_id = ?", (chain_id,))
            return cur.rowcount > 0


class SnapshotRecords:
    """The snapshotter's own rows. ``num`` is allocated here: the smallest integer above
    every number in use, so directory names stay short."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, key: str, parent: str, kind: str, created: int,
            labels: dict[str, str] | None = None) -> SnapshotRow:
        """Insert a new snapshot row; AlreadyExists if the key is taken, NotFound if the
        parent is named but missing."""
        with self.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM snapshots WHERE key = ?", (key,)).fetchone():
                raise AlreadyExists(f"snapshot {key}: already exists")
            num = cur.execute("SELECT COALESCE(MAX(num), 0) + 1 FROM snapshots").fetchone()[0]
            cur.execute(
                "INSERT INTO snapshots(key, num, parent, kind, created, labels)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, num, parent, kind, created, _dump(labels or {})),
            )
        return SnapshotRow(key, int(num), parent, kind, created, dict(labels or {}))

    def get(self, key: str) -> SnapshotRow | None:
        row = self.db.query_one("SELECT * FROM snapshots WHERE key = ?", (key,))
        return _snapshot(row) if row else None

    def list(self) -> list[SnapshotRow]:
        return [_snapshot(r) for r in self.db.query("SELECT * FROM snapshots ORDER BY num")]

    def children(self, key: str) -> builtins.list[str]:
        return [r[0] for r in self.db.query("SELECT key FROM snapshots WHERE parent = ?", (key,))]

    def rename_commit(self, key: str, name: str, labels: dict[str, str] | None = None) -> None:
        """Turn the active snapshot ``key`` into the committed snapshot ``name``."""
        with self.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM snapshots WHERE key = ?", (name,)).fetchone():
                raise AlreadyExists(f"snapshot {name}: already exists")
            params: list[Any] = [name, "committed"]
            sql = "UPDATE snapshots SET key = ?, kind = ?"
            if labels is not None:
                sql += ", labels = ?"
                params.append(_dump(labels))
            cur.execute(sql + " WHERE key = ?", (*params, key))
            if cur.rowcount == 0:
                raise NotFound(f"snapshot {key}: not found")

    def delete(self, key: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM snapshots WHERE key = ?", (key,))
            return cur.rowcount > 0

    def nums(self) -> set[int]:
        return {int(r[0]) for r in self.db.query("SELECT num FROM snapshots")}

    def keys(self, kinds: Iterable[str] | None = None) -> builtins.list[str]:
        if kinds is None:
            return [r[0] for r in self.db.query("SELECT key FROM snapshots")]
        ks = list(kinds)
        marks = ",".join("?" * len(ks))
        sql = f"SELECT key FROM snapshots WHERE kind IN ({marks})"
        return [r[0] for r in self.db.query(sql, ks)]
