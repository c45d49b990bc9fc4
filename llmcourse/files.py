"""Files that a later read depends on: atomic writes and content hashes.

A crash (or a killed kernel) in the middle of a write must never leave a half-written file that a
later run reads as if it were whole. :func:`write_atomic` writes a temporary file in the same folder,
flushes it to disk (``fsync``), renames it over the target (``os.replace`` is atomic on POSIX and
Windows) and then syncs the folder, so a reader sees the old file or the new one, never a mix, even
after a power cut. :func:`sha256_file` is how the data files, the zoo and training checkpoints are
checked on read.

This module sits at the bottom of the package: it imports nothing from ``llmcourse``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["sha256_bytes", "sha256_file", "write_atomic", "write_atomic_text"]


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder for syncing; its rename is durable enough
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it.

    A temporary file in the same folder is written and fsynced, renamed over ``path``, and the folder
    is fsynced so that the rename itself survives a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_atomic_text(path: str | os.PathLike, text: str) -> None:
    """:func:`write_atomic` for UTF-8 text."""
    write_atomic(path, text.encode("utf-8"))
