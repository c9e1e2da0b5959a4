"""Versioned, atomically swapped build directories, shared by every artefact the project builds
(the KG, the literature index, the name-embedding index).

Layout under a data directory::

    current -> builds/<build id>     replaced by one atomic rename when a build succeeds
    builds/<build id>/               the build's files and its manifest.json
    .staging-<build id>/             a build in progress; left behind by an interrupted one
    .build.lock                      held while a build writes

An interrupted or failed build leaves ``current`` on the previous build; the next build clears the
leftover staging directory. The build that ``current`` replaces is kept (a running reader may still
have it open); older ones are removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kg.errors import KGError


def new_build_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def staged_build(data_dir: Path, command: str, build_id: str) -> Iterator[Path]:
    """Lock ``data_dir``, clear leftovers, yield an empty staging directory; when the block finishes
    without an exception, move it to ``builds/<build_id>`` and point ``current`` at it.

    ``command`` names the build command in the error raised when another build holds the lock.
    """
    data_dir = Path(data_dir)
    (data_dir / "builds").mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KGError(f"another `{command}` is writing to {data_dir}; wait for it to finish") from None
        for stale in data_dir.glob(".staging-*"):
            shutil.rmtree(stale)  # left by an interrupted build
        staging = data_dir / f".staging-{build_id}"
        staging.mkdir()
        yield staging
        final = data_dir / "builds" / build_id
        if final.exists():  # a deterministic build id rebuilt: replace it
            shutil.rmtree(final)
        staging.rename(final)
        swap_current(data_dir, final)


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
