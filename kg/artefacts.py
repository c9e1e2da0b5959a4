"""Versioned, atomically swapped build directories, shared by every artefact the project builds
(the KG, the literature index, the name-embedding index), and the checks that open them.

Layout under a data directory::

    current -> builds/<build id>     replaced by one atomic rename when a build succeeds
    builds/<build id>/               the build's files, its manifest.json and its .verified.json stamp
    .staging-<build id>/             a build in progress; left behind by an interrupted one
    .build.lock                      held while a build runs, from before it reads its first source

A build takes the lock first (``build_lock``), so a second build into the same directory fails at once,
naming the holder, instead of after reading its sources. An interrupted or failed build leaves ``current``
on the previous build; the next build clears the leftover staging directory. The build that ``current``
replaces is kept (a running reader may still have it open); older ones are removed.

Opening checks the manifest (``read_manifest``: readable JSON with the keys the reader needs) and the files it
lists (``verify_files``). Every failure is ``ArtefactMismatchError`` naming the artefact, what is wrong and the
command that rebuilds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from kg.errors import ArtefactMismatchError, BuildLockedError

log = logging.getLogger(__name__)

LOCK_NAME = ".build.lock"
MANIFEST_NAME = "manifest.json"
STAMP_NAME = ".verified.json"


def new_build_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- building -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildLock:
    """The held lock of ``data_dir``: proof, passed along, that this process may write there."""

    data_dir: Path
    command: str

    @contextmanager
    def stage(self, build_id: str) -> Iterator[Path]:
        """Clear leftovers, yield an empty staging directory; when the block finishes without an exception,
        move it to ``builds/<build_id>`` and point ``current`` at it."""
        (self.data_dir / "builds").mkdir(parents=True, exist_ok=True)
        for stale in self.data_dir.glob(".staging-*"):
            shutil.rmtree(stale)  # left by an interrupted build
        staging = self.data_dir / f".staging-{build_id}"
        staging.mkdir()
        yield staging
        final = self.data_dir / "builds" / build_id
        if final.exists():  # a deterministic build id rebuilt: replace it
            shutil.rmtree(final)
        staging.rename(final)
        swap_current(self.data_dir, final)


@contextmanager
def build_lock(data_dir: Path, command: str, lock_path: Path | None = None) -> Iterator[BuildLock]:
    """Hold an exclusive ``flock`` on ``data_dir/.build.lock`` (or ``lock_path``) for the whole build; take it
    before reading any source. Raises ``BuildLockedError`` at once, naming ``command``, the directory and the
    holder (pid, host, command, start time, as the holder wrote them), when another build holds it. The kernel
    releases the lock when its holder dies, so a crashed build never leaves it held."""
    data_dir = Path(data_dir)
    path = Path(lock_path) if lock_path else data_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8") as lock:  # no truncation:
        try:  # the holder's own line stays readable to the build that is refused
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLockedError(data_dir, command, lock.read().strip() or None) from None
        lock.truncate(0)
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}, `{command}` since "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        lock.flush()
        try:
            yield BuildLock(data_dir, command)
        finally:
            lock.seek(0)
            lock.truncate(0)


def held_or_taken(stack: ExitStack, lock: BuildLock | None, data_dir: Path, command: str,
                  lock_path: Path | None = None) -> BuildLock:
    """``lock`` when the caller already holds the lock of ``data_dir`` (a CLI that takes it before reading the
    KG), else ``build_lock`` taken now and released with ``stack``."""
    if lock is None:
        return stack.enter_context(build_lock(data_dir, command, lock_path))
    if Path(lock.data_dir) != Path(data_dir):
        raise ValueError(f"the lock held is {lock.data_dir}'s, this build writes to {data_dir}")
    return lock


def swap_current(data_dir: Path, target: Path) -> None:
    """Point ``data_dir/current`` at ``target`` atomically; keep the build it replaces and remove older ones."""
    link = data_dir / "current"
    previous = link.resolve() if link.exists() else None
    temporary = data_dir / "current.swap"
    temporary.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, data_dir), temporary)
    os.replace(temporary, link)
    for old in (data_dir / "builds").iterdir():
        if old.resolve() not in (target.resolve(), previous):
            shutil.rmtree(old, ignore_errors=True)


def record_files(root: Path, paths: Iterable[Path]) -> dict[str, dict]:
    """The manifest's ``files``: ``{path relative to root: {"sha256": hex, "bytes": size}}``. Also stamps them
    as verified (the build has just hashed them), so the first open need not hash them again."""
    root = Path(root)
    records, seen = {}, {}
    for path in sorted(Path(p) for p in paths):
        rel, stat = path.relative_to(root).as_posix(), path.stat()
        records[rel] = {"sha256": sha256_file(path), "bytes": stat.st_size}
        seen[rel] = _identity(stat)
    _write_stamp(root, _expected(root, records, "", ""), seen)
    return records


# --- opening --------------------------------------------------------------------------------------

def read_manifest(root: Path, artefact: str, rebuild_command: str, required: Iterable[str] = ()) -> dict:
    """``root/manifest.json`` as a dict holding every ``required`` key; ``ArtefactMismatchError`` naming
    ``rebuild_command`` when it cannot be read (truncated, not JSON, not an object) or lacks a key."""
    path = Path(root) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ArtefactMismatchError(root, f"unreadable {MANIFEST_NAME}: {error}", artefact, rebuild_command) from None
    if not isinstance(manifest, dict):
        raise ArtefactMismatchError(root, f"{MANIFEST_NAME} holds a {type(manifest).__name__}, not an object",
                                    artefact, rebuild_command)
    require_keys(root, manifest, required, artefact, rebuild_command)
    return manifest


def require_keys(root: Path, manifest: Mapping[str, object], keys: Iterable[str], artefact: str,
                 rebuild_command: str) -> None:
    """``ArtefactMismatchError`` naming the keys of ``keys`` that ``manifest`` lacks, if any."""
    missing = [key for key in keys if key not in manifest]
    if missing:
        raise ArtefactMismatchError(root, f"{MANIFEST_NAME} lacks {', '.join(map(repr, missing))}", artefact,
                                    rebuild_command)


def verify_files(root: Path, files: Mapping[str, object], artefact: str, rebuild_command: str,
                 full: bool = False) -> None:
    """Check each file the manifest lists (``{relative path: {"sha256", "bytes"}}``, or a bare sha256 in
    manifests written before sizes were recorded) against it; raise ``ArtefactMismatchError`` at the first
    missing file, wrong size or wrong sha256.

    Cost bound: a full sha256 runs at about 1.2 GB/s warm and 0.6 GB/s cold on this machine, so the KG's 498 MB
    would add 0.4-0.9 s to every open (the literature and name indexes 0.1-0.2 s each). So the size of every file
    is checked at every open (a ``stat``, microseconds), but the sha256 only of files that may have changed since
    their last full check: ``root/.verified.json`` (written by the build and after each check that hashed)
    records each file's size, mtime, ctime (ns) and inode, and the manifest entries they matched; a file whose
    size, times or inode differ, whose ctime is not older than the stamp itself (written in the same clock tick,
    it could change unseen: git's "racily clean" entries), or whose manifest entry changed is hashed again.
    Truncation, an overwrite (even with its mtime set back: the kernel sets ctime) and an edited manifest are
    thus caught at every open; a change the file system does not see (bit rot) is not, though RocksDB's block
    checksums still catch it in the store when the block is read. ``full=True``, or deleting the stamp, hashes
    every file. A copied artefact is hashed once, then stamped; where the stamp cannot be written (a read-only
    directory) every open hashes.
    """
    root = Path(root)
    expected = _expected(root, files, artefact, rebuild_command)
    stamp, stamp_mtime = ({}, 0) if full else _read_stamp(root, expected)
    seen, hashed = {}, 0
    for rel, (sha256, size) in expected.items():
        try:
            stat = (root / rel).stat()
        except OSError:
            raise ArtefactMismatchError(root, f"{rel} missing or its checksum differs from the manifest "
                                              "(no such file)", artefact, rebuild_command) from None
        if size is not None and stat.st_size != size:
            raise ArtefactMismatchError(root, f"{rel} missing or its checksum differs from the manifest "
                                              f"({stat.st_size} bytes, the manifest says {size})", artefact,
                                        rebuild_command)
        seen[rel] = _identity(stat)
        if stamp.get(rel) == seen[rel] and stat.st_ctime_ns < stamp_mtime:
            continue
        if sha256_file(root / rel) != sha256:
            raise ArtefactMismatchError(root, f"{rel} missing or its checksum differs from the manifest "
                                              "(sha256 differs)", artefact, rebuild_command)
        hashed += 1
    if hashed:
        log.info("%s at %s: sha256 of %d of %d files checked", artefact, root, hashed, len(expected))
        _write_stamp(root, expected, seen)


def _expected(root: Path, files: Mapping[str, object], artefact: str,
              rebuild_command: str) -> dict[str, tuple[str, int | None]]:
    """relative path -> (sha256, size or None) from the manifest's entries; an unreadable entry is an error."""
    if not isinstance(files, Mapping):
        raise ArtefactMismatchError(root, f"{MANIFEST_NAME}'s file list is unreadable", artefact, rebuild_command)
    expected = {}
    for rel, value in files.items():
        if isinstance(value, str):
            expected[rel] = (value, None)
        elif isinstance(value, dict) and isinstance(value.get("sha256"), str) and isinstance(value.get("bytes"), int):
            expected[rel] = (value["sha256"], value["bytes"])
        else:
            raise ArtefactMismatchError(root, f"{MANIFEST_NAME} entry of {rel} is unreadable: {value!r}", artefact,
                                        rebuild_command)
    return expected


def _identity(stat: os.stat_result) -> list[int]:
    """What changes when a file's content may have: size, mtime, ctime (which no user call can set back, unlike
    mtime) and inode (a file replaced by a rename)."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _digest(expected: Mapping[str, tuple[str, int | None]]) -> str:
    return hashlib.sha256(json.dumps(sorted(expected.items())).encode()).hexdigest()


def _read_stamp(root: Path, expected: Mapping[str, tuple[str, int | None]]) -> tuple[dict[str, list[int]], int]:
    """(relative path -> ``_identity``, the stamp's own mtime_ns); empty when there is no stamp, it is
    damaged, or it was checked against other manifest entries."""
    path = root / STAMP_NAME
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
        if stamp["manifest_entries"] == _digest(expected):
            return dict(stamp["files"]), path.stat().st_mtime_ns
    except (OSError, ValueError, KeyError, TypeError):
        pass  # hash everything
    return {}, 0


def _write_stamp(root: Path, expected: Mapping[str, tuple[str, int | None]], seen: dict[str, list[int]]) -> None:
    """Stamp the files as matching ``expected`` when they had the identities ``seen``; best effort (an
    atomic replace; a failure is only logged)."""
    temporary = root / f"{STAMP_NAME}.{os.getpid()}"
    try:
        temporary.write_text(json.dumps({"manifest_entries": _digest(expected), "files": seen}, sort_keys=True),
                             encoding="utf-8")
        os.replace(temporary, root / STAMP_NAME)
    except OSError as error:
        log.debug("could not stamp %s as verified: %s", root, error)
        temporary.unlink(missing_ok=True)
