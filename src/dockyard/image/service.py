"""The image service: the local image store (content + snapshots + records) and the
container root filesystems built on it.

An image is a config blob in the content store (its digest is the image id), a row in
``images`` (with the descriptors of its layer blobs), the names in ``image_refs`` that point
at it, and its layers unpacked as committed snapshots keyed by chain id (``layers``),
shared with every other image that has the same layers. A container's rootfs is an active
snapshot keyed by the container id on top of the image's top layer.

Names resolve as docker resolves them (``resolve``): ``sha256:<64 hex>`` or 64 hex → by id;
a reference (``busybox``, ``busybox:1``, ``localhost:5000/x@sha256:…``; normalised, the
default tag ``latest``) → by name; otherwise a unique id prefix (``ab12``, ``sha256:ab12``).
A miss raises ``NoSuchImage("No such image: <familiar name:tag>")``.

Every change to the records and every gc pass happens under one lock; unpacking and blob
writes run outside it, holding leases (``dockyard.image.gc.Leases``) so a concurrent gc
leaves their blobs and snapshots alone. Whatever an operation created is removed again if
it fails: a failed import leaves no row, no blob and no snapshot behind.
"""

from __future__ import annotations

import builtins
import json
import os
import platform
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.content.local import LocalContentStore
from dockyard.content.store import ContentStore, read_blob, write_blob
from dockyard.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NoSuchImage,
    NotFound,
    Unsupported,
)
from dockyard.image import timefmt
from dockyard.image.changes import apply_changes, parse_duration
from dockyard.image.gc import GCReport, Leases, collect
from dockyard.image.unpack import EXTRACT_PREFIX, LayerSource, Unpacker, chain_ids
from dockyard.oci import mediatypes
from dockyard.oci.digest import digest_bytes
from dockyard.oci.mount import Mount
from dockyard.oci.reference import Reference, is_valid_tag, parse_normalized
from dockyard.snapshot.naive import NaiveSnapshotter
from dockyard.snapshot.overlay import OverlaySnapshotter, overlay_supported
from dockyard.snapshot.snapshotter import Kind, Snapshotter
from dockyard.store.db import Database
from dockyard.store.images import ImageRecords, ImageRow, RefRow
from dockyard.util.tarlayer import Compression, decompress, detect_compression

__all__ = [
    "ContainerUse",
    "DeleteRecord",
    "HistoryItem",
    "Image",
    "ImageDeleteConflict",
    "ImageService",
    "PruneReport",
    "short",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEXPREFIX = re.compile(r"^[0-9a-f]{1,64}$")
_CHUNK = 1 << 20
_IMAGE_LABEL = "dockyard.image"

# moby's conflict classes (daemon/images/image_delete.go)
_CHILD = 1
_RUNNING = 2
_ACTIVE_REF = 4
_STOPPED = 8
_HARD = _CHILD | _RUNNING
_SOFT = _ACTIVE_REF | _STOPPED


def short(ident: str) -> str:
    """docker's TruncateID: no ``sha256:``, 12 characters."""
    return ident.split(":", 1)[-1][:12]


def _familiar(ref: str) -> str:
    try:
        return parse_normalized(ref).familiar()
    except InvalidArgument:
        return ref


def _ref_name(ref: str) -> str:
    """The repository of a stored name (``docker.io/library/busybox``)."""
    try:
        return parse_normalized(ref).name
    except InvalidArgument:
        return ref


def _host_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(m, "amd64")


@dataclass(frozen=True)
class Image:
    """One local image, with its names in docker's familiar form."""

    id: str                          # 'sha256:<hex>'
    config: dict[str, Any]           # the parsed config blob
    repo_tags: list[str]             # ['busybox:latest', 'localhost:5000/x:1']
    repo_digests: list[str]          # ['localhost:5000/x@sha256:...']
    created: int                     # config "created", unix seconds
    added: int                       # stored locally, unix seconds
    parent: str                      # parent image id or ''
    chain_id: str                    # top layer chain id or ''
    size: int                        # unpacked size of all layers
    last_tag_time: int = 0           # unix seconds of the newest name, 0 if never named
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.config.get("rootfs") or {}
        return [str(d) for d in rootfs.get("diff_ids") or []]

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})


@dataclass(frozen=True)
class HistoryItem:
    id: str                          # image id, or '<missing>'
    created: int
    created_by: str
    tags: list[str] | None
    size: int
    comment: str


@dataclass(frozen=True)
class DeleteRecord:
    untagged: str = ""
    deleted: str = ""

    def to_json(self) -> dict[str, str]:
        return {"Untagged": self.untagged} if self.untagged else {"Deleted": self.deleted}


@dataclass(frozen=True)
class ContainerUse:
    """A container created from an image, as the engine reports it for ``remove``."""

    id: str
    running: bool = False


@dataclass
class PruneReport:
    deleted: list[DeleteRecord] = field(default_factory=list)
    space_reclaimed: int = 0


class ImageDeleteConflict(Conflict):
    """docker's ``conflict: unable to delete <id> (must be forced) - <why>``."""

    def __init__(self, image_id: str, message: str, *, hard: bool, used: bool = False) -> None:
        force = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short(image_id)} ({force}) - {message}")
        self.hard = hard
        self.used = used


ContainersOf = Callable[[str], Sequence[ContainerUse]]


def _no_containers(_image_id: str) -> Sequence[ContainerUse]:
    return ()


def _go_match(pattern: str, name: str) -> bool:
    """Go's path.Match: ``*`` and ``?`` do not cross ``/``."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                return False
            body = pattern[i + 1:j]
            if body.startswith("^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.fullmatch("".join(out), name) is not None
    except re.error:
        return False


def _ref_matches(pattern: str, ref: str) -> bool:
    """docker's reference.FamiliarMatch: the pattern against ``name:tag`` or ``name``."""
    try:
        r = parse_normalized(ref)
    except InvalidArgument:
        return False
    return _go_match(pattern, r.familiar()) or _go_match(pattern, r.familiar_name)


def _parse_until(value: str, now: float) -> float:
    """``until``/``since`` timestamps: unix seconds, RFC 3339, or a duration before now."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return timefmt.parse_rfc3339(value) / 1e9
    except ValueError:
        pass
    try:
        return now - parse_duration(value) / 1e9
    except InvalidArgument:
        raise InvalidArgument(f"failed to parse value {value!r} as a timestamp") from None


def _label_match(labels: Mapping[str, str], spec: str) -> bool:
    k, sep, v = spec.partition("=")
    if not sep:
        return k in labels
    return labels.get(k) == v


_LIST_FILTERS = frozenset({"before", "dangling", "label", "reference", "since", "until"})
_PRUNE_FILTERS = frozenset({"dangling", "label", "label!", "until"})


def _bool_filter(filters: Mapping[str, Sequence[str]], key: str) -> bool | None:
    vals = list(filters.get(key) or ())
    if not vals:
        return None
    out: bool | None = None
    for v in vals:
        lv = v.lower()
        if lv in ("true", "1"):
            b = True
        elif lv in ("false", "0"):
            b = False
        else:
            raise InvalidArgument(f"invalid filter '{key}={v}'")
        if out is not None and out != b:
            raise InvalidArgument(f"invalid filter '{key}={','.join(vals)}'")
        out = b
    return out


class ImageService:
    """The local image store. Thread-safe; blocking (call it from worker threads)."""

    def __init__(self, db: Database, content: ContentStore, snapshotter: Snapshotter, *,
                 recover: bool = True) -> None:
        self.db = db
        self.content = content
        self.snapshotter = snapshotter
        self.records = ImageRecords(db)
        self.leases = Leases()
        self._lock = threading.RLock()
        self.unpacker = Unpacker(content, snapshotter, self.records, self._lock, self.leases)
        if recover:
            self.recover()

    @classmethod
    def open(cls, data_root: str | os.PathLike[str], db: Database, *,
             snapshotter: str = "auto") -> "ImageService":
        """Build the service on ``<data_root>/content`` and ``<data_root>/snapshots``.

        ``snapshotter``: ``"overlay"``, ``"naive"`` or ``"auto"`` (overlay when running as
        root on a kernel with overlayfs, else naive).
        """
        root = Path(data_root)
        if snapshotter == "auto":
            snapshotter = "overlay" if os.geteuid() == 0 and overlay_supported() else "naive"
        snap: Snapshotter
        if snapshotter == "overlay":
            snap = OverlaySnapshotter(root / "snapshots", db)
        elif snapshotter == "naive":
            snap = NaiveSnapshotter(root / "snapshots", db)
        else:
            raise InvalidArgument(f"unknown snapshotter {snapshotter!r}")
        return cls(db, LocalContentStore(root / "content"), snap)

    @property
    def driver_name(self) -> str:
        """``docker info``'s Driver and inspect's GraphDriver.Name."""
        return self.snapshotter.name

    def recover(self) -> GCReport:
        """After a restart: drop snapshot dirs without records, stale unpacks and unreferenced
        blobs (half-written ingests were dropped by the content store already)."""
        cleanup = getattr(self.snapshotter, "cleanup", None)
        if callable(cleanup):
            cleanup()
        return self.gc()

    def gc(self) -> GCReport:
        with self._lock:
            return collect(self.records, self.content, self.snapshotter, self.leases)

    def _gc_quietly(self) -> None:
        try:
            self.gc()
        except Exception:  # never hide the error that made us clean up
            pass

    # -- names ---------------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """The id (``sha256:<hex>``) of the image ``name`` names; NoSuchImage if none."""
        if not name:
            raise NoSuchImage("No such image: ")
        if name.startswith("sha256:"):
            hexpart = name[7:]
            if _HEX64.match(hexpart):
                if self.records.get_image(name):
                    return name
                raise NoSuchImage(f"No such image: {name}")
        elif _HEX64.match(name):
            if self.records.get_image("sha256:" + name):
                return "sha256:" + name
            raise NoSuchImage(f"No such image: {name}")
        ref: Reference | None = None
        parse_error: InvalidArgument | None = None
        if not name.startswith("sha256:"):
            try:
                ref = parse_normalized(name)
            except InvalidArgument as exc:
                parse_error = exc
        if ref is not None:
            key = f"{ref.name}@{ref.digest}" if ref.digest else ref.with_default_tag().repo_and_tag
            row = self.records.get_ref(key)
            if row is not None:
                return row.image_id
        prefix = name[7:] if name.startswith("sha256:") else name
        if _HEXPREFIX.match(prefix):
            found = [i for i in self.records.image_ids() if i[7:].startswith(prefix)]
            if len(found) == 1:
                return found[0]
        if parse_error is not None and not _HEXPREFIX.match(prefix):
            raise parse_error
        if ref is not None:
            shown = ref if ref.digest else ref.with_default_tag()
            raise NoSuchImage(f"No such image: {shown.familiar()}")
        raise NoSuchImage(f"No such image: {name}")

    def _image(self, row: ImageRow) -> Image:
        try:
            config = json.loads(read_blob(self.content, row.id))
        except NotFound:
            config = {}
        refs = self.records.refs_of(row.id)
        return Image(
            id=row.id, config=config,
            repo_tags=[_familiar(r.ref) for r in refs if r.kind == "tag"],
            repo_digests=[_familiar(r.ref) for r in refs if r.kind == "digest"],
            created=row.created, added=row.added, parent=row.parent, chain_id=row.chain_id,
            size=row.size, last_tag_time=max((r.created for r in refs), default=0),
            doc=dict(row.doc),
        )

    def get(self, name: str) -> Image:
        image_id = self.resolve(name)
        row = self.records.get_image(image_id)
        if row is None:
            raise NoSuchImage(f"No such image: {name}")
        return self._image(row)

    def config(self, name: str) -> dict[str, Any]:
        """The image's config document (``config``, ``rootfs``, ``history``, ...)."""
        return self.get(name).config

    def config_bytes(self, name: str) -> bytes:
        """The exact bytes of the config blob (for push and save)."""
        return read_blob(self.content, self.resolve(name))

    def exists(self, name: str) -> bool:
        try:
            self.resolve(name)
        except NotFound:
            return False
        return True

    def count(self) -> int:
        return len(self.records.image_ids())

    @staticmethod
    def _repo_tag(repo: str, tag: str) -> Reference:
        """docker's RepoTagReference: ``repo`` may carry a tag; ``tag`` wins; default latest."""
        ref = parse_normalized(repo)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        if ref.familiar_name == "sha256":
            raise InvalidArgument(
                "refusing to create an ambiguous tag using digest algorithm as name")
        if ref.familiar_name == "scratch":
            raise InvalidArgument("'scratch' is a reserved name")
        if tag:
            if not is_valid_tag(tag):
                raise InvalidArgument(f"invalid tag format: {tag!r}")
            return Reference(ref.domain, ref.path, tag, "")
        return ref.with_default_tag()

    def tag(self, name: str, repo: str, tag: str = "") -> str:
        """Point ``repo[:tag]`` at the image ``name``; returns the familiar ``name:tag``."""
        ref = self._repo_tag(repo, tag)
        image_id = self.resolve(name)
        with self._lock:
            self.records.set_ref(RefRow(ref.repo_and_tag, image_id, "tag", int(time.time())))
        return ref.familiar()

    def untag(self, ref: str) -> str:
        """Remove one name (the image stays, possibly dangling); returns its familiar form."""
        r = parse_normalized(ref)
        key = f"{r.name}@{r.digest}" if r.digest else r.with_default_tag().repo_and_tag
        with self._lock:
            if not self.records.delete_ref(key):
                raise NoSuchImage(f"No such image: {_familiar(key)}")
        return _familiar(key)

    # -- listing -------------------------------------------------------------------------

    def list(self, *, all: bool = False,
             filters: Mapping[str, Sequence[str]] | None = None) -> list[Image]:
        """docker's image list: newest first; ``all=False`` hides untagged intermediate
        images (those with children); filters ``reference``, ``dangling``, ``label``,
        ``before``, ``since``, ``until``. With a reference filter, each image shows only
        the names that match it."""
        filters = {k: list(v) for k, v in (filters or {}).items()}
        for k in filters:
            if k not in _LIST_FILTERS:
                raise InvalidArgument(f"invalid filter '{k}'")
        dangling = _bool_filter(filters, "dangling")
        patterns = filters.get("reference") or []
        labels = filters.get("label") or []
        before = min((self.get(v).created for v in filters.get("before") or []), default=None)
        since = max((self.get(v).created for v in filters.get("since") or []), default=None)
        now = time.time()
        until = min((_parse_until(v, now) for v in filters.get("until") or []), default=None)
        rows = self.records.list_images()
        parents = {r.parent for r in rows if r.parent}
        out: list[Image] = []
        for row in rows:
            if before is not None and row.created >= before:
                continue
            if since is not None and row.created <= since:
                continue
            if until is not None and row.created >= until:
                continue
            img = self._image(row)
            if labels and any(not _label_match(img.labels, spec) for spec in labels):
                continue
            tags, digests = img.repo_tags, img.repo_digests
            if patterns:
                tags = [t for t in tags if any(_ref_matches(p, t) for p in patterns)]
                digests = [d for d in digests if any(_ref_matches(p, d) for p in patterns)]
            if not tags and not digests:
                if patterns:
                    continue
                if dangling is False:
                    continue
                if not all and row.id in parents:
                    continue
            elif dangling is True and tags:
                continue
            out.append(replace(img, repo_tags=tags, repo_digests=digests))
        return out

    # -- history -------------------------------------------------------------------------

    def history(self, name: str) -> builtins.list[HistoryItem]:
        """docker's image history, newest first."""
        img = self.get(name)
        diff_ids = img.diff_ids
        chains = chain_ids(diff_ids)
        items: builtins.list[dict[str, Any]] = []
        layer_n = 0
        for h in img.config.get("history") or []:
            size = 0
            if not h.get("empty_layer"):
                if layer_n >= len(chains):
                    raise InvalidArgument("too many non-empty layers in History section")
                row = self.records.get_layer(chains[layer_n])
                size = row.size if row is not None else 0
                layer_n += 1
            created = 0
            if h.get("created"):
                try:
                    created = timefmt.parse_rfc3339(str(h["created"])) // 1_000_000_000
                except ValueError:
                    created = 0
            items.insert(0, {"created": created, "created_by": str(h.get("created_by") or ""),
                             "comment": str(h.get("comment") or ""), "size": size})
        out: builtins.list[HistoryItem] = []
        current: str = img.id
        for it in items:
            ident = "<missing>"
            tags: builtins.list[str] | None = None
            if current:
                ident = current
                irow = self.records.get_image(current)
                if irow is not None:
                    t = [_familiar(r.ref) for r in self.records.refs_of(current) if r.kind == "tag"]
                    tags = t or None
                    current = irow.parent
                else:
                    current = ""
            out.append(HistoryItem(ident, it["created"], it["created_by"], tags, it["size"],
                                   it["comment"]))
        return out

    # -- import --------------------------------------------------------------------------

    def import_image(self, stream: BinaryIO, *, repo: str = "", tag: str = "",
                     message: str = "", changes: Sequence[str] = (), src: str = "-",
                     platform_os: str = "") -> str:
        """``docker import``: one layer from a (plain or compressed) rootfs tar, a new config.

        ``repo`` may carry ``:tag`` (``tag`` wins). ``changes`` are Dockerfile instructions
        (``dockyard.image.changes``). Returns the image id. A malformed or hostile tar
        raises InvalidArgument, and nothing of this import is left behind.
        """
        ref = self._repo_tag(repo, tag) if repo else None
        if platform_os and platform_os.split("/")[0] != "linux":
            raise InvalidArgument(f"operating system is not supported: {platform_os}")
        if src != "-":
            raise Unsupported("importing from a URL is not supported; send the tar as the body")
        container_config = apply_changes({}, changes)
        comment = message or f"Imported from {src}"
        try:
            return self._import(stream, ref, container_config, comment)
        except BaseException:
            self._gc_quietly()
            raise

    def _ingest_layer(self, stream: BinaryIO, hold: ExitStack) -> tuple[str, str, int]:
        """Store the upload as a blob as it came (gzip/zstd/plain) or, for bzip2/xz, as the
        plain tar; its digest is leased on ``hold``. Returns (digest, media type, size)."""
        head = b""
        while len(head) < 6:
            chunk = stream.read(6 - len(head))
            if not chunk:
                break
            head += chunk
        kind = detect_compression(head)
        media = {Compression.GZIP: mediatypes.OCI_LAYER_GZIP,
                 Compression.ZSTD: mediatypes.OCI_LAYER_ZSTD}.get(kind, mediatypes.OCI_LAYER)
        reader: Any = stream
        if kind in (Compression.BZIP2, Compression.XZ):
            reader, _ = decompress(_Concat(head, stream))  # type: ignore[arg-type]
            head = b""
        w = self.content.writer(f"import-{uuid.uuid4().hex}")
        try:
            if head:
                w.write(head)
            while chunk := reader.read(_CHUNK):
                w.write(chunk)
            digest = w.digest()
            hold.enter_context(self.leases.hold(digest))
            try:
                w.commit(0, digest)
            except AlreadyExists:
                pass
        except BaseException:
            w.abort()
            raise
        return digest, media, w.size

    def _import(self, stream: BinaryIO, ref: Reference | None,
                container_config: dict[str, Any], comment: str) -> str:
        with ExitStack() as hold:
            digest, media, size = self._ingest_layer(stream, hold)
            layer = self.unpacker.unpack([LayerSource(digest, media)], hold)[0]
            created = timefmt.format_rfc3339nano(timefmt.now_ns())
            config = {
                "architecture": _host_arch(),
                "comment": comment,
                "config": container_config,
                "created": created,
                "history": [{"created": created, "comment": comment}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            }
            return self.create_image(
                config, [{"mediaType": media, "digest": digest, "size": size}],
                chain=layer.chain_id, size=layer.size, refs=[ref] if ref else [])

    def create_image(self, config: dict[str, Any], layer_descriptors: Sequence[dict[str, Any]],
                     *, chain: str, size: int, parent: str = "",
                     refs: Iterable[Reference] = (),
                     extra_doc: Mapping[str, Any] | None = None,
                     config_bytes: bytes | None = None,
                     moved: dict[str, str] | None = None) -> str:
        """Store a config whose layers are unpacked already (``chain`` is the top chain id)
        and name it. Returns the image id. (Import, commit, pull and load use it.)

        ``config_bytes``: the config's exact bytes (a pulled or loaded image keeps the id it
        has elsewhere); otherwise ``config`` is serialised here. ``moved``, if given, is
        filled with ``{name: previous image id}`` for each name taken from another image.
        ``layer_descriptors`` are the layer blobs (compressed as stored), base first."""
        data = config_bytes if config_bytes is not None else \
            json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        image_id = digest_bytes(data)
        with self.leases.hold(image_id):
            write_blob(self.content, f"config-{image_id}", data, expected_digest=image_id)
            created = 0
            try:
                created = timefmt.parse_rfc3339(str(config.get("created", ""))) // 1_000_000_000
            except ValueError:
                pass
            now = int(time.time())
            doc: dict[str, Any] = {"layers": list(layer_descriptors), "config_size": len(data)}
            if extra_doc:
                doc.update(extra_doc)
            with self._lock:
                if chain and self.records.get_layer(chain) is None:
                    raise NotFound(f"layer {chain}: not found")
                changed = self.records.add_image(
                    ImageRow(id=image_id, created=created, added=now, parent=parent,
                             chain_id=chain, size=size, doc=doc),
                    [RefRow(r.repo_and_tag if not r.digest else f"{r.name}@{r.digest}", image_id,
                            "digest" if r.digest else "tag", now) for r in refs],
                )
                if moved is not None:
                    moved.update({_familiar(k): v for k, v in changed.items()})
        return image_id

    # -- records kept for the registry side (pull, push, save) ---------------------------

    def update_doc(self, image_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``change`` to the image's doc under the lock (NoSuchImage if it is gone).
        Blobs named in ``doc["blobs"]`` are kept by gc for as long as the image exists."""
        with self._lock:
            row = self.records.get_image(image_id)
            if row is None:
                raise NoSuchImage(f"No such image: {image_id}")
            doc = dict(row.doc)
            change(doc)
            self.records.update_doc(image_id, doc)

    def add_digest_ref(self, image_id: str, name: str, digest: str) -> None:
        """Record ``name@digest`` (a RepoDigest) for the image."""
        r = parse_normalized(name)
        with self._lock:
            self.records.set_ref(RefRow(f"{r.name}@{digest}", image_id, "digest",
                                        int(time.time())))

    def ref_target(self, ref: Reference) -> str:
        """The id the name ``ref`` (a tag or a digest reference) points at, or ``""``."""
        key = f"{ref.name}@{ref.digest}" if ref.digest else ref.with_default_tag().repo_and_tag
        row = self.records.get_ref(key)
        return row.image_id if row is not None else ""

    def tags_of_repository(self, name: str) -> builtins.list[Reference]:
        """Every tag of the repository ``name`` (``docker push`` without a tag), sorted."""
        repo = parse_normalized(name).name
        out: builtins.list[Reference] = []
        for r in self.records.all_refs():
            if r.kind != "tag":
                continue
            ref = parse_normalized(r.ref)
            if ref.name == repo:
                out.append(ref)
        return sorted(out, key=lambda x: x.tag)

    def chain_dirs(self, chain: str) -> builtins.list[Path]:
        """The snapshot directories of a layer chain, top first (for the copying
        snapshotter the first one is the whole tree)."""
        dirs: builtins.list[Path] = []
        c = chain
        while c:
            row = self.records.get_layer(c)
            if row is None:
                break
            try:
                dirs.append(self.snapshotter.fs_dir(row.snapshot))
            except NotFound:
                break
            c = row.parent
        return dirs

    # -- removal -------------------------------------------------------------------------

    def _conflict(self, image_id: str, mask: int,
                  using: Sequence[ContainerUse]) -> ImageDeleteConflict | None:
        if mask & _CHILD and self.records.children(image_id):
            return ImageDeleteConflict(image_id, "image has dependent child images", hard=True)
        if mask & _RUNNING:
            for c in using:
                if c.running:
                    return ImageDeleteConflict(
                        image_id, f"image is being used by running container {short(c.id)}",
                        hard=True, used=True)
        if mask & _ACTIVE_REF and self.records.refs_of(image_id):
            return ImageDeleteConflict(image_id, "image is referenced in multiple repositories",
                                       hard=False)
        if mask & _STOPPED:
            for c in using:
                if not c.running:
                    return ImageDeleteConflict(
                        image_id, f"image is being used by stopped container {short(c.id)}",
                        hard=False, used=True)
        return None

    @staticmethod
    def _single_reference(refs: Sequence[RefRow]) -> bool:
        """moby's isSingleReference: all names in one repository, at most one tag."""
        if len(refs) <= 1:
            return len(refs) == 1
        single: RefRow | None = None
        canonical: set[str] = set()
        for r in refs:
            if r.kind == "digest":
                canonical.add(_ref_name(r.ref))
            elif single is None:
                single = r
            else:
                return False
        if single is None:
            single = refs[0]
        return len(canonical) == 1 and _ref_name(single.ref) in canonical

    def _uses_snapshot(self, image_id: str, containers: ContainersOf,
                       every: bool = False) -> ContainersOf:
        """Ask the engine about containers *before* taking our lock (its callback may take
        the engine's own lock: never the other way round), for the image and its parents
        (or, with ``every``, for all images)."""
        ids: builtins.list[str] = []
        if every:
            ids = self.records.image_ids()
        else:
            cur = image_id
            while cur and cur not in ids:
                ids.append(cur)
                row = self.records.get_image(cur)
                cur = row.parent if row is not None else ""
        cache = {i: list(containers(i)) for i in ids}

        def lookup(i: str) -> Sequence[ContainerUse]:
            return cache[i] if i in cache else list(containers(i))

        return lookup

    def remove(self, name: str, *, force: bool = False, prune: bool = True,
               containers: ContainersOf = _no_containers) -> builtins.list[DeleteRecord]:
        """``docker rmi``, with docker's rules and messages (moby image_delete.go).

        ``containers(image_id)`` lists the containers created from an image (it is called
        before the service's lock is taken, so it may take the engine's locks). A name is
        untagged; the image goes when its last name goes (unless a container uses it).
        An id deletes the image if it has at most one repository's names, or with
        ``force``. Running containers and child images are hard conflicts; stopped
        containers and other names are soft ones (``force`` overrides). With ``prune``,
        untagged parents go too.
        """
        containers = self._uses_snapshot(self.resolve(name), containers)
        with self._lock:
            image_id = self.resolve(name)
            records: builtins.list[DeleteRecord] = []
            refs = self.records.refs_of(image_id)
            using = list(containers(image_id))
            is_id = image_id.startswith(name) or image_id[7:].startswith(name)
            removed_ref = False
            if not is_id:
                parsed = parse_normalized(name)
                if not force and self._single_reference(refs) and using:
                    raise Conflict(
                        f"conflict: unable to remove repository reference {json.dumps(name)} "
                        f"(must force) - container {short(using[0].id)} is using its referenced "
                        f"image {short(image_id)}")
                key = (f"{parsed.name}@{parsed.digest}" if parsed.digest
                       else parsed.with_default_tag().repo_and_tag)
                self.records.delete_ref(key)
                records.append(DeleteRecord(untagged=_familiar(key)))
                refs = self.records.refs_of(image_id)
                if not parsed.digest:
                    same_repo_tag = any(r.kind == "tag" and _ref_name(r.ref) == parsed.name
                                        for r in refs)
                    if not same_repo_tag:
                        for r in refs:
                            if r.kind == "digest" and _ref_name(r.ref) == parsed.name:
                                self.records.delete_ref(r.ref)
                                records.append(DeleteRecord(untagged=_familiar(r.ref)))
                        refs = self.records.refs_of(image_id)
                if refs:
                    return records
                removed_ref = True
            elif self._single_reference(refs):
                mask = _HARD if force else _HARD | (_SOFT & ~_ACTIVE_REF)
                conflict = self._conflict(image_id, mask, using)
                if conflict:
                    raise conflict
                for r in refs:
                    self.records.delete_ref(r.ref)
                    records.append(DeleteRecord(untagged=_familiar(r.ref)))
            self._delete(image_id, records, force=force, prune=prune, quiet=removed_ref,
                         containers=containers)
            return records

    def _delete(self, image_id: str, records: builtins.list[DeleteRecord], *, force: bool,
                prune: bool, quiet: bool, containers: ContainersOf) -> int:
        """moby's imageDeleteHelper; returns the bytes of layers freed."""
        using = list(containers(image_id))
        mask = _HARD if force else _HARD | _SOFT
        conflict = self._conflict(image_id, mask, using)
        if conflict:
            dangling = not self.records.refs_of(image_id) and not self.records.children(image_id)
            if quiet and (not dangling or conflict.used):
                return 0
            raise conflict
        row = self.records.get_image(image_id)
        if row is None:
            return 0
        for r in self.records.refs_of(image_id):
            self.records.delete_ref(r.ref)
            records.append(DeleteRecord(untagged=_familiar(r.ref)))
        self.records.delete_image(image_id)
        records.append(DeleteRecord(deleted=image_id))
        report = self.gc()
        records.extend(DeleteRecord(deleted=c) for c in report.layers_removed)
        freed = report.bytes_freed
        if prune and row.parent and self.records.get_image(row.parent):
            freed += self._delete(row.parent, records, force=False, prune=True, quiet=True,
                                  containers=containers)
        return freed

    def prune(self, filters: Mapping[str, Sequence[str]] | None = None, *,
              containers: ContainersOf = _no_containers) -> PruneReport:
        """``docker image prune``: unused dangling images (``dangling=false``: every unused
        image); filters ``until``, ``label``, ``label!``."""
        filters = {k: list(v) for k, v in (filters or {}).items()}
        for k in filters:
            if k not in _PRUNE_FILTERS:
                raise InvalidArgument(f"invalid filter '{k}'")
        dangling = _bool_filter(filters, "dangling")
        dangling_only = dangling is not False
        now = time.time()
        until = min((_parse_until(v, now) for v in filters.get("until") or []), default=None)
        report = PruneReport()
        containers = self._uses_snapshot("", containers, every=True)
        with self._lock:
            rows = self.records.list_images()
            parents = {r.parent for r in rows if r.parent}
            for row in rows:
                if row.id in parents or self.records.get_image(row.id) is None:
                    continue
                refs = self.records.refs_of(row.id)
                if dangling_only and refs:
                    continue
                if until is not None and row.created >= until:
                    continue
                if filters.get("label") or filters.get("label!"):
                    labels = self._image(row).labels
                    if not all(_label_match(labels, s) for s in filters.get("label") or []):
                        continue
                    if any(_label_match(labels, s) for s in filters.get("label!") or []):
                        continue
                if containers(row.id):
                    continue
                try:
                    for r in refs:
                        report.deleted.append(DeleteRecord(untagged=_familiar(r.ref)))
                        self.records.delete_ref(r.ref)
                    report.space_reclaimed += self._delete(
                        row.id, report.deleted, force=False, prune=True, quiet=False,
                        containers=containers)
                except Conflict:
                    continue
        return report

    # -- container root filesystems ------------------------------------------------------

    def prepare_rootfs(self, image_id: str, key: str) -> builtins.list[Mount]:
        """Create the container rootfs ``key`` (an active snapshot) on the image's layers;
        returns the mounts to perform. AlreadyExists if ``key`` is taken."""
        with ExitStack() as hold:
            with self._lock:
                img_id = self.resolve(image_id)
                row = self.records.get_image(img_id)
                if row is None:
                    raise NoSuchImage(f"No such image: {image_id}")
                parent = ""
                if row.chain_id:
                    layer = self.records.get_layer(row.chain_id)
                    if layer is None:
                        raise FailedPrecondition(
                            f"image {short(img_id)}: its layers are not unpacked")
                    parent = layer.snapshot
                    # gc keeps the chain while we prepare (the copying snapshotter copies
                    # a whole tree here: not under the lock)
                    hold.enter_context(self.leases.hold(row.chain_id, parent))
            return self.snapshotter.prepare(key, parent, {_IMAGE_LABEL: img_id})

    def rootfs_mounts(self, key: str) -> builtins.list[Mount]:
        return self.snapshotter.mounts(key)

    def remove_rootfs(self, key: str) -> None:
        """Remove a container rootfs (missing is fine), then collect layers nothing uses
        any more (those of an image removed with ``rmi -f`` while the container existed)."""
        with self._lock:
            try:
                parent = self.snapshotter.stat(key).parent
                self.snapshotter.remove(key)
            except NotFound:
                return
            # the common case, the container's image still exists: nothing can be orphaned,
            # so skip the collection (a full scan, which grows with the number of snapshots)
            if parent and self.records.chain_has_image(parent):
                return
            self._gc_quietly()

    def rootfs_usage(self, key: str) -> tuple[int, int]:
        """(SizeRw, SizeRootFs): bytes written by the container, and that plus the image."""
        info = self.snapshotter.stat(key)
        own = self.snapshotter.usage(key).size
        chain_size = 0
        p = info.parent
        while p:
            row = self.records.get_layer(p)
            if row is None:
                break
            chain_size += row.size
            p = row.parent
        size_rw = max(0, own - chain_size) if self.snapshotter.name == "naive" else own
        return size_rw, size_rw + chain_size

    def upper_dir(self, key: str) -> Path:
        """The directory holding what the container changed (the overlay upper dir)."""
        return self.snapshotter.fs_dir(key)

    def rootfs_keys(self) -> builtins.list[str]:
        """Keys of every container rootfs (active snapshots that are not unpacks)."""
        return [i.key for i in self.snapshotter.walk()
                if i.kind is not Kind.COMMITTED and not i.key.startswith(EXTRACT_PREFIX)]

    def graph_driver_data(self, name: str) -> dict[str, str]:
        """Inspect's ``GraphDriver.Data`` for an image (overlay2's dirs)."""
        img = self.get(name)
        dirs: builtins.list[Path] = []
        c = img.chain_id
        while c:
            row = self.records.get_layer(c)
            if row is None:
                break
            try:
                dirs.append(self.snapshotter.fs_dir(row.snapshot))
            except NotFound:
                break
            c = row.parent
        if not dirs:
            return {}
        top = dirs[0]
        data = {"MergedDir": str(top.parent / "merged"), "UpperDir": str(top),
                "WorkDir": str(top.parent / "work")}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(str(d) for d in dirs[1:])
        return data


class _Concat:
    """``head`` then the rest of ``stream`` (after sniffing the first bytes)."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._stream.read(n)
