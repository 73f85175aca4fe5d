"""The one reporting helper: progress bars and status lines go through here, never through print().

Library code calls ``progress(...)`` and ``status(...)``; the CLI decides whether they show
(``set_quiet``). Bars go to stderr so that stdout stays machine-readable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_quiet = False


def set_quiet(quiet: bool) -> bool:
    """Show or hide progress and status output; returns the previous setting."""
    global _quiet
    previous, _quiet = _quiet, quiet
    return previous


def progress(iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Wrap an iterable in a progress bar (hidden when quiet or when stderr is not a terminal and CI is set)."""
    return iter(tqdm(iterable, total=total, desc=description, disable=_quiet, file=sys.stderr,
                     dynamic_ncols=True, mininterval=0.5))


def status(message: str) -> None:
    """A one-line status message on stderr."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)
