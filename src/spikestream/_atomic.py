"""Atomic outputs: a file appears complete or not at all, whatever interrupts the writer.

Every file spikestream writes goes through ``atomic_path``: the writer fills a hidden temporary file
beside the target (same folder, so the final rename is atomic on POSIX), which replaces the target
only when the writer finished. An exception, Ctrl-C or SIGTERM (the CLI turns it into
KeyboardInterrupt) deletes the temporary file instead, so an interrupted run leaves no partial files
and an earlier complete file in its place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any exception it is removed.
    The temporary name keeps the suffix (writers that pick a format from it still do)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial-{secrets.token_hex(4)}{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write to a temporary name in the same folder, then rename: a reader never sees half a file."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)
