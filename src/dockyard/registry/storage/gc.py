"""Mark and sweep over the storage layout, and a consistency check.

``collect``: *mark* every manifest revision of every repository and the blobs its manifest
names (config and layers; index children are revisions themselves); *sweep* every blob not
marked, the ``_layers`` links left pointing at nothing, and uploads older than
``upload_max_age``. Untagged manifests are kept (distribution's default). Run it while the
registry is stopped or idle: a blob pushed but not yet named by a manifest is unmarked.

``verify``: every blob hashes to its path, every link names an existing blob or revision,
every manifest's references are there. It returns the problems found (empty: consistent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dockyard.oci.digest import is_digest

from ..errcodes import RegistryError
from . import paths
from .driver import PathNotFound, StorageDriver
from .manifest import parse_manifest
from .repo import Registry, parse_rfc3339

__all__ = ["GCResult", "collect", "verify"]


@dataclass
class GCResult:
    marked: set[str] = field(default_factory=set)
    deleted_blobs: list[str] = field(default_factory=list)
    deleted_links: list[str] = field(default_factory=list)
    deleted_uploads: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def _links(driver: StorageDriver, base: str) -> Iterator[tuple[str, str]]:
    """``(digest, link dir)`` for each ``<base>/<alg>/<hex>/link``."""
    try:
        algs = driver.list(base)
    except PathNotFound:
        return
    for alg_dir in algs:
        alg = alg_dir.rsplit("/", 1)[1]
        try:
            hexes = driver.list(alg_dir)
        except PathNotFound:
            continue
        for hex_dir in hexes:
            digest = f"{alg}:{hex_dir.rsplit('/', 1)[1]}"
            if is_digest(digest):
                yield digest, hex_dir


def _blobs(driver: StorageDriver) -> Iterator[tuple[str, int]]:
    """``(digest, size)`` of every blob in the global store."""
    try:
        algs = driver.list(paths.BLOBS)
    except PathNotFound:
        return
    for alg_dir in algs:
        alg = alg_dir.rsplit("/", 1)[1]
        for prefix_dir in driver.list(alg_dir):
            try:
                hexes = driver.list(prefix_dir)
            except PathNotFound:
                continue
            for hex_dir in hexes:
                digest = f"{alg}:{hex_dir.rsplit('/', 1)[1]}"
                try:
                    size = driver.stat(hex_dir + "/data").size
                except PathNotFound:
                    size = -1  # a blob directory without data: swept too
                yield digest, size


def _all_repositories(driver: StorageDriver) -> list[str]:
    """Like ``Registry.catalog`` but also repositories that only hold uploads."""
    out: list[str] = []

    def visit(path: str, name: str) -> None:
        try:
            children = driver.list(path)
        except PathNotFound:
            return
        bases = [c.rsplit("/", 1)[1] for c in children]
        if name and any(b.startswith("_") for b in bases):
            out.append(name)
        for child, base in zip(children, bases, strict=True):
            if not base.startswith("_"):
                visit(child, f"{name}/{base}" if name else base)

    visit(paths.REPOSITORIES, "")
    return sorted(out)


def collect(driver: StorageDriver, *, dry_run: bool = False, upload_max_age: float = 86400.0,
            log: Callable[[str], None] = lambda s: None, now: float | None = None) -> GCResult:
    res = GCResult()
    now = time.time() if now is None else now
    repos = _all_repositories(driver)
    # mark
    for name in repos:
        for digest, _ in _links(driver, paths.manifest_revisions_dir(name)):
            try:
                data = driver.get_content(paths.blob_data(digest))
            except PathNotFound:
                continue
            res.marked.add(digest)
            try:
                info = parse_manifest(data)
            except RegistryError:
                continue
            res.marked.update(d.digest for d in info.blobs)
            res.marked.update(d.digest for d in info.children)
    # sweep blobs
    for digest, size in _blobs(driver):
        if digest in res.marked:
            continue
        log(f"blob eligible for deletion: {digest}")
        res.deleted_blobs.append(digest)
        res.freed_bytes += max(size, 0)
        if not dry_run:
            try:
                driver.delete(paths.blob_dir(digest))
            except PathNotFound:
                pass
    deleted = set(res.deleted_blobs)
    # sweep links to blobs that are gone, and stale uploads
    for name in repos:
        for digest, link_dir in _links(driver, paths.layers_dir(name)):
            if digest in deleted or (digest not in res.marked and _missing(driver, digest)):
                res.deleted_links.append(f"{name}@{digest}")
                if not dry_run:
                    _delete_quietly(driver, link_dir)
        try:
            uploads = driver.list(paths.uploads_dir(name))
        except PathNotFound:
            uploads = []
        for up in uploads:
            uuid = up.rsplit("/", 1)[1]
            started = _upload_started(driver, name, uuid)
            if started is None or now - started >= upload_max_age:
                log(f"upload eligible for deletion: {name} {uuid}")
                res.deleted_uploads.append(f"{name}/{uuid}")
                if not dry_run:
                    _delete_quietly(driver, up)
    return res


def _missing(driver: StorageDriver, digest: str) -> bool:
    try:
        driver.stat(paths.blob_data(digest))
        return False
    except PathNotFound:
        return True


def _delete_quietly(driver: StorageDriver, path: str) -> None:
    try:
        driver.delete(path)
    except PathNotFound:
        pass


def _upload_started(driver: StorageDriver, name: str, uuid: str) -> float | None:
    try:
        return parse_rfc3339(driver.get_content(paths.upload_startedat(name, uuid)).decode())
    except PathNotFound:
        try:
            return driver.stat(paths.upload_dir(name, uuid)).mtime
        except PathNotFound:
            return None


def verify(driver: StorageDriver) -> list[str]:
    """Problems that would make a client see half-stored or missing content."""
    problems: list[str] = []
    reg = Registry(driver)
    present: set[str] = set()
    for digest, size in _blobs(driver):
        if size < 0:
            problems.append(f"blob {digest}: directory without data")
            continue
        alg = digest.split(":", 1)[0]
        actual = reg.hash_file(paths.blob_data(digest), alg)
        if actual.digest() != digest:
            problems.append(f"blob {digest}: content hashes to {actual.digest()}")
        else:
            present.add(digest)

    def check_link(link_dir: str, digest: str, what: str) -> bool:
        try:
            content = driver.get_content(link_dir + "/link").decode()
        except PathNotFound:
            problems.append(f"{what}: directory without link")
            return False
        if content != digest:
            problems.append(f"{what}: link says {content!r}")
            return False
        if digest not in present:
            problems.append(f"{what}: blob missing")
            return False
        return True

    for name in _all_repositories(driver):
        layers = {d for d, link_dir in _links(driver, paths.layers_dir(name))
                  if check_link(link_dir, d, f"{name} layer {d}")}
        revisions: dict[str, bytes] = {}
        for d, link_dir in _links(driver, paths.manifest_revisions_dir(name)):
            if check_link(link_dir, d, f"{name} manifest {d}"):
                revisions[d] = driver.get_content(paths.blob_data(d))
        for d, data in revisions.items():
            try:
                info = parse_manifest(data)
            except RegistryError as e:
                problems.append(f"{name} manifest {d}: {e}")
                continue
            for b in info.blobs:
                if not b.foreign and b.digest not in layers:
                    problems.append(f"{name} manifest {d}: blob {b.digest} missing")
            for c in info.children:
                if c.digest not in revisions:
                    problems.append(f"{name} manifest {d}: child {c.digest} missing")
        try:
            tag_dirs = driver.list(paths.tags_dir(name))
        except PathNotFound:
            tag_dirs = []
        for tag_dir in tag_dirs:
            tag = tag_dir.rsplit("/", 1)[1]
            try:
                target = driver.get_content(paths.tag_link(name, tag)).decode()
            except PathNotFound:
                problems.append(f"{name}:{tag}: tag without link")
                continue
            if target not in revisions:
                problems.append(f"{name}:{tag}: points to unknown manifest {target}")
    return problems
