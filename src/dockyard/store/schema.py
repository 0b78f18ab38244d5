"""The engine's durable metadata: one SQLite database, ``<data-root>/state.db`` (WAL).

Only ``dockyard.store`` opens it. Bulk data lives beside it as files whose lifetime these
rows decide (content blobs, snapshot directories, container directories).

Schema, version 1::

    meta
      key TEXT PK, value TEXT                 -- 'schema_version'
    containers                                -- one row per container, ever created and not removed
      id TEXT PK                              -- 64 hex
      name TEXT UNIQUE                        -- with the leading '/', as docker stores it
      image_id TEXT                           -- 'sha256:<hex>' of the image config
      created TEXT                            -- RFC 3339 with nanoseconds, UTC
      doc TEXT                                -- JSON: Config, HostConfig, State... (engine-owned)
    images                                    -- one row per image config in the local store
      id TEXT PK                              -- 'sha256:<hex>' = digest of the config blob
                                              --   (its exact bytes are in the content store)
      created INTEGER                         -- the config's "created", unix seconds (0 if absent)
      added INTEGER                           -- unix seconds the image was stored locally
      parent TEXT                             -- id of the parent image ('' if none; commit/build)
      chain_id TEXT                           -- chain id of the top layer ('' if it has no layers)
      size INTEGER                            -- unpacked size in bytes of all its layers
      doc TEXT                                -- JSON (image-service-owned): {"layers": [the
                                              --   descriptor of each layer blob, base first],
                                              --   "config_size": N, ...}
    image_refs                                -- names that point at images
      ref TEXT PK                             -- normalised: 'docker.io/library/busybox:latest'
                                              --   or 'docker.io/library/busybox@sha256:...'
      image_id TEXT -> images.id              -- ON DELETE CASCADE
      kind TEXT                               -- 'tag' | 'digest'
      created INTEGER                         -- unix seconds the name was set
    layers                                    -- unpacked layer stacks, shared between images
      chain_id TEXT PK                        -- 'sha256:<hex>' (image-spec ChainID)
      diff_id TEXT                            -- digest of the uncompressed layer tar
      parent TEXT                             -- chain_id of the layer below ('' for a base layer)
      snapshot TEXT                           -- committed snapshot holding the unpacked layer
      size INTEGER                            -- unpacked size in bytes of this layer alone
      blob TEXT                               -- digest of the blob it came from ('' if unknown)
      media_type TEXT                         -- media type of that blob
    snapshots                                 -- snapshotter records (see dockyard.snapshot)
      key TEXT PK                             -- committed: the chain id; active: the container
                                              --   id, or 'extract-<random>' while unpacking
      num INTEGER UNIQUE                      -- short directory name: snapshots/<num>/{fs,work}
      parent TEXT                             -- key of the parent committed snapshot ('' if none)
      kind TEXT                               -- 'committed' | 'active' | 'view'
      created INTEGER                         -- unix seconds
      labels TEXT                             -- JSON object of strings

A change of layout adds a numbered migration to ``MIGRATIONS`` and updates this drawing.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE containers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            image_id TEXT NOT NULL,
            created TEXT NOT NULL,
            doc TEXT NOT NULL
        )""",
        "CREATE INDEX containers_image ON containers(image_id)",
        """CREATE TABLE images (
            id TEXT PRIMARY KEY,
            created INTEGER NOT NULL DEFAULT 0,
            added INTEGER NOT NULL,
            parent TEXT NOT NULL DEFAULT '',
            chain_id TEXT NOT NULL DEFAULT '',
            size INTEGER NOT NULL DEFAULT 0,
            doc TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX images_parent ON images(parent)",
        """CREATE TABLE image_refs (
            ref TEXT PRIMARY KEY,
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            created INTEGER NOT NULL
        )""",
        "CREATE INDEX image_refs_image ON image_refs(image_id)",
        """CREATE TABLE layers (
            chain_id TEXT PRIMARY KEY,
            diff_id TEXT NOT NULL,
            parent TEXT NOT NULL DEFAULT '',
            snapshot TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            blob TEXT NOT NULL DEFAULT '',
            media_type TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE snapshots (
            key TEXT PRIMARY KEY,
            num INTEGER NOT NULL UNIQUE,
            parent TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            created INTEGER NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX snapshots_parent ON snapshots(parent)",
    ],
}
