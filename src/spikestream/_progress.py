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


_position: tuple[str, int, int | None] | None = None  # (description, items finished, total) of the latest bar


def progress(iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Wrap an iterable in a progress bar (hidden when quiet); ``position`` tells how far it got."""
    bar = tqdm(iterable, total=total, desc=description, disable=_quiet, file=sys.stderr, dynamic_ncols=True,
               mininterval=0.5)
    return _tracked(bar, description, total)


def _tracked(bar: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    global _position
    for finished, item in enumerate(bar):
        _position = (description, finished, total)
        yield item
    _position = None  # ran to the end; a bar left early (break, an exception) keeps where it stopped


def clear_position() -> None:
    global _position
    _position = None


def position() -> str | None:
    """Where the latest unfinished progress bar stands, e.g. "run clip.avi: 37 of 300 done" (for the
    message of an interrupted job), or None."""
    if _position is None:
        return None
    description, finished, total = _position
    return f"{description or 'work'}: {finished}{f' of {total}' if total else ''} done"


def status(message: str) -> None:
    """A one-line status message on stderr."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)
