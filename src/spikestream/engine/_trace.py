"""The Trace: per frame and per synaptic layer, the events, synops, dense MACs and work done.

Hardware models consume a Trace, never the network, so a Trace is saved and loaded on its own
(``.npz``, no pickle) and hardware studies rerun without the model.
"""

from __future__ import annotations

import json
import os
import tokenize
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spikestream._atomic import atomic_path
from spikestream.engine._counting import LayerCount
from spikestream.errors import InputError

TRACE_FORMAT = 1  # bump when the npz layout changes


class TraceFormatError(InputError):
    """A trace file that is missing, corrupt, or of another format."""


class _FrameRows:
    """Per-frame rows in a buffer that doubles when full. A long stream then adds no small long-lived
    allocation per frame, which would fragment the heap between the stream's per-frame buffers (RSS
    grew ~90 kB per frame with one small array per frame)."""

    def __init__(self, row_shape: tuple[int, ...], dtype=np.int64, rows: np.ndarray | None = None):
        self._data = np.zeros((64, *row_shape), dtype) if rows is None else np.array(rows, dtype)
        self._count = 0 if rows is None else len(rows)

    def append(self, row) -> None:
        if self._count == len(self._data):
            grown = np.zeros((max(64, 2 * len(self._data)), *self._data.shape[1:]), self._data.dtype)
            grown[:self._count] = self._data
            self._data = grown
        self._data[self._count] = row
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def array(self) -> np.ndarray:
        return self._data[:self._count].copy()


class Trace:
    """Counts recorded frame by frame; arrays are (frames, layers) unless named per layer."""

    def __init__(self, layers: Sequence[str], kinds: Sequence[str], dense_macs: Sequence[int],
                 tile: tuple[int, int] = (16, 16), record_work: bool = True, metadata: dict | None = None):
        self.layers = list(layers)
        self.kinds = list(kinds)
        self.dense_macs = np.asarray(dense_macs, dtype=np.int64)  # (L,) per frame
        self.tile = (int(tile[0]), int(tile[1]))
        self.record_work = record_work
        self.metadata: dict = dict(metadata or {})
        self._events = _FrameRows((len(self.layers),))
        self._synops = _FrameRows((len(self.layers),))
        self._keyframes = _FrameRows((), bool)
        self._work: dict[str, dict[str, list[np.ndarray]]] = {
            kind: {layer: [] for layer in self.layers} for kind in ("channel", "input_channel", "tile")
        }

    # --- recording ------------------------------------------------------------------------------
    def append(self, counts: Sequence[LayerCount], keyframe: bool = False) -> None:
        """Add one frame: one LayerCount per layer (already summed over the frame's time steps)."""
        if len(counts) != len(self.layers):
            raise ValueError(f"expected counts for {len(self.layers)} layers, got {len(counts)}")
        self._events.append([c.events for c in counts])
        self._synops.append([c.synops for c in counts])
        self._keyframes.append(bool(keyframe))
        if self.record_work:
            for layer, c in zip(self.layers, counts, strict=True):
                self._work["channel"][layer].append(np.asarray(c.channel_work, dtype=np.int64))
                self._work["input_channel"][layer].append(np.asarray(c.input_channel_work, dtype=np.int64))
                self._work["tile"][layer].append(np.asarray(c.tile_work, dtype=np.int64))

    # --- views ----------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return len(self._events)

    @property
    def events(self) -> np.ndarray:
        return self._events.array()

    @property
    def synops(self) -> np.ndarray:
        return self._synops.array()

    @property
    def keyframes(self) -> np.ndarray:
        return self._keyframes.array()

    def _work_array(self, kind: str, layer: str) -> np.ndarray:
        if not self.record_work:
            raise ValueError("this trace was recorded without per-channel and per-tile work (record_work=False)")
        return np.stack(self._work[kind][layer])

    def channel_work(self, layer: str) -> np.ndarray:
        """(frames, C_out): events arriving over non-zero weights, per output channel."""
        return self._work_array("channel", layer)

    def input_channel_work(self, layer: str) -> np.ndarray:
        """(frames, C_in): synops per input channel."""
        return self._work_array("input_channel", layer)

    def tile_work(self, layer: str) -> np.ndarray:
        """(frames, tiles_y, tiles_x): events arriving over non-zero weights, per output tile."""
        return self._work_array("tile", layer)

    def layer_summary(self) -> list[dict]:
        """Totals over all frames, one dict per layer (the ``layers`` list of report.json)."""
        events, synops = self.events.sum(0), self.synops.sum(0)
        return [{"name": name, "kind": kind, "events": int(e), "synops": int(s),
                 "dense_macs": int(m) * self.frames}
                for name, kind, e, s, m in zip(self.layers, self.kinds, events, synops, self.dense_macs, strict=True)]

    def totals(self) -> dict:
        """Whole-trace totals; activity = synops / dense MACs (1.0 means no saving over the ANN)."""
        events, synops = int(self.events.sum()), int(self.synops.sum())
        macs = int(self.dense_macs.sum()) * self.frames
        return {"events": events, "synops": synops, "dense_macs": macs,
                "activity": synops / macs if macs else 0.0}

    # --- persistence ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` atomically (temporary name, then rename)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(TRACE_FORMAT),
            "header": np.array(json.dumps({"layers": self.layers, "kinds": self.kinds, "tile": self.tile,
                                           "record_work": self.record_work, "metadata": self.metadata})),
            "dense_macs": self.dense_macs,
            "events": self.events,
            "synops": self.synops,
            "keyframes": self.keyframes,
        }
        if self.record_work and self.frames:
            for kind in self._work:
                for index, layer in enumerate(self.layers):
                    arrays[f"work/{kind}/{index}"] = self._work_array(kind, layer)
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trace:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if "format" not in data or int(data["format"]) != TRACE_FORMAT:
                    raise TraceFormatError(f"cannot read trace {str(path)!r}: not a spikestream trace "
                                           f"of format {TRACE_FORMAT}")
                header = json.loads(str(data["header"]))
                trace = cls(header["layers"], header["kinds"], data["dense_macs"], tuple(header["tile"]),
                            bool(header["record_work"]), header["metadata"])
                events, synops, keyframes = data["events"], data["synops"], data["keyframes"]
                if events.shape != synops.shape or events.shape[1:] != (len(trace.layers),) \
                        or keyframes.shape != events.shape[:1]:
                    raise TraceFormatError(f"cannot read trace {str(path)!r}: inconsistent array shapes")
                trace._events = _FrameRows(events.shape[1:], rows=events)
                trace._synops = _FrameRows(synops.shape[1:], rows=synops)
                trace._keyframes = _FrameRows((), bool, rows=keyframes)
                if trace.record_work and trace.frames:
                    for kind in trace._work:
                        for index, layer in enumerate(trace.layers):
                            work = data[f"work/{kind}/{index}"]
                            if work.shape[0] != trace.frames:
                                raise TraceFormatError(f"cannot read trace {str(path)!r}: work array "
                                                       f"{kind}/{layer} has {work.shape[0]} frames")
                            trace._work[kind][layer] = list(work.astype(np.int64))
        except TraceFormatError:
            raise
        except FileNotFoundError:
            raise TraceFormatError(f"cannot read trace {str(path)!r}: no such file") from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, NotImplementedError, RuntimeError,
                SyntaxError, tokenize.TokenError, zipfile.BadZipFile, zlib.error) as error:
            # a damaged zip (headers, method, flags, deflate data) or .npy member header (a Python literal)
            raise TraceFormatError(f"cannot read trace {str(path)!r}: {type(error).__name__}: {error}") from None
        return trace
