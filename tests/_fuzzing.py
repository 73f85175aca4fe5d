"""Malformed-input fuzzing shared by tests/test_fuzz.py (bounded, in CI) and benchmarks/reliability.py
(larger budget, writes docs/reliability.md).

Every *kind* of input a user hands to spikestream has a seed file that the project writes itself (or a
real sample video) and a reader. A *damage* turns the seed's bytes into a malformed copy: cut it short,
flip bits, overwrite a run of bytes, or splice in a copy of another part. The reader must then either
accept the file (some damage is harmless: a flipped bit in video payload is still a video) or raise an
``InputError`` with a one-line message; anything else — another exception, a hang past the deadline —
is a finding.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikestream import ir
from spikestream.data import read_frames, write_video
from spikestream.engine import Stream, Trace
from spikestream.errors import InputError
from spikestream.frontend import load_nir, save_nir
from spikestream.models import load_weights, save_weights

DEADLINE_S = 20  # a reader still busy after this long on one file counts as a hang
SAMPLE_VIDEO_BYTES = 256 * 1024  # the part of a real sample video the damage is confined to
SAMPLE_VIDEO_FRAMES = 8  # frames decoded from it (the damage lies in the first ones)


@dataclass(frozen=True)
class Damage:
    kind: str  # truncate, flip, overwrite, splice
    offset: float  # where, as a fraction of the length
    size: int  # bytes cut, bits flipped, bytes overwritten or spliced
    seed: int

    def apply(self, data: bytes) -> bytes:
        if not data:
            return data
        rng = np.random.default_rng(self.seed)
        at = min(int(self.offset * len(data)), len(data) - 1)
        if self.kind == "truncate":
            return data[:at]
        buffer = bytearray(data)
        if self.kind == "flip":
            for position in rng.integers(at, min(len(data), at + 4096), size=self.size):
                buffer[position] ^= 1 << int(rng.integers(8))
        elif self.kind == "overwrite":
            end = min(len(data), at + self.size)
            buffer[at:end] = rng.integers(0, 256, end - at, dtype=np.uint8).tobytes()
        elif self.kind == "splice":
            source = int(rng.integers(len(data)))
            buffer[at:at] = data[source:source + self.size]
        else:
            raise ValueError(f"unknown damage {self.kind!r}")
        return bytes(buffer)


DAMAGES = ("truncate", "flip", "overwrite", "splice")


def random_damage(rng: np.random.Generator) -> Damage:
    kind = DAMAGES[int(rng.integers(len(DAMAGES)))]
    size = int(rng.integers(1, 64)) if kind != "truncate" else 0
    return Damage(kind, float(rng.random()), size, int(rng.integers(2**31)))


# --- seed files and their readers -------------------------------------------------------------------------


def _small_graph() -> ir.Graph:
    rng = np.random.default_rng(0)
    return ir.sequential((1, 12, 12), [
        ir.Conv2d("conv", weight=rng.standard_normal((4, 1, 3, 3)), padding=1), ir.LIF("lif", tau=5e-4),
        ir.SumPool2d("pool", kernel_size=2), ir.Flatten("flat"),
        ir.Linear("fc", weight=rng.standard_normal((3, 144))), ir.IF("out", threshold=1.0),
    ])


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(16, 3)


def _seed_nir(folder: Path) -> Path:
    path = folder / "seed.nir"
    save_nir(_small_graph(), path)
    return path


def _read_nir(path: Path) -> None:
    load_nir(path)


def _seed_weights(folder: Path) -> Path:
    return save_weights(TinyNet(), folder / "seed.safetensors", {"model": "tiny"})


def _read_weights(path: Path) -> None:
    load_weights(TinyNet(), path)


def _seed_trace(folder: Path) -> Path:
    from spikestream.passes import to_sigma_delta

    graph = to_sigma_delta(ir.sequential((1, 12, 12), [
        ir.Conv2d("conv", weight=np.random.default_rng(1).standard_normal((4, 1, 3, 3)), padding=1), ir.ReLU("relu"),
    ]), threshold=0.05)
    stream = Stream(graph, "sigma-delta", keyframe=4)
    for frame in np.random.default_rng(2).random((6, 12, 12)):
        stream.process(frame)
    return stream.trace.save(folder / "seed.npz")


def _read_trace(path: Path) -> None:
    Trace.load(path).totals()


def _seed_written_video(folder: Path) -> Path:
    frames = (np.random.default_rng(3).random((12, 48, 64)) * 255).astype(np.uint8)
    return write_video(folder / "seed.mp4", frames, fps=10)


def _seed_sample_video(folder: Path) -> Path:
    """The head of a real sample video (tree.avi from opencv-doc): the damage lands in decoded frames."""
    from spikestream.data import find_sample_video

    path = folder / "seed.avi"
    with open(find_sample_video("tree.avi"), "rb") as video:
        path.write_bytes(video.read(SAMPLE_VIDEO_BYTES))
    return path


def _read_video(path: Path) -> None:
    for _ in read_frames(path, size=(32, 24), max_frames=SAMPLE_VIDEO_FRAMES):
        pass


def _seed_frame_array(folder: Path) -> Path:
    path = folder / "seed.npy"
    np.save(path, (np.random.default_rng(4).random((5, 16, 16)) * 255).astype(np.uint8))
    return path


def _read_frame_array(path: Path) -> None:
    for _ in read_frames(path):
        pass


@dataclass(frozen=True)
class InputKind:
    name: str
    description: str
    make_seed: Callable[[Path], Path]
    read: Callable[[Path], None]


INPUT_KINDS = {kind.name: kind for kind in (
    InputKind("nir", "NIR graph (HDF5) written by save_nir", _seed_nir, _read_nir),
    InputKind("weights", "safetensors weights written by save_weights", _seed_weights, _read_weights),
    InputKind("trace", "Trace .npz written by Trace.save", _seed_trace, _read_trace),
    InputKind("video-written", "MP4 (H.264) written by data.write_video", _seed_written_video, _read_video),
    InputKind("video-sample", "first 256 KiB of tree.avi (opencv-doc)", _seed_sample_video, _read_video),
    InputKind("frame-array", ".npy frame array", _seed_frame_array, _read_frame_array),
)}


# --- one trial ----------------------------------------------------------------------------------------------


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int):
    """Raise Hang in the main thread after ``seconds`` (SIGALRM; POSIX)."""
    def expire(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Outcome:
    result: str  # "accepted", "clear error", "finding"
    detail: str


def trial(kind: InputKind, seed: Path, damage: Damage, folder: Path) -> Outcome:
    """Read a damaged copy of ``seed``; classify what happened."""
    path = folder / f"damaged{seed.suffix}"
    path.write_bytes(damage.apply(seed.read_bytes()))
    try:
        with deadline(DEADLINE_S):
            kind.read(path)
    except Hang as hang:
        return Outcome("finding", f"hang: {hang}")
    except InputError as error:
        message = str(error)
        if "\n" in message or not message.strip():
            return Outcome("finding", f"error message is not one line: {message!r}")
        return Outcome("clear error", message)
    except Exception as error:
        return Outcome("finding", f"{type(error).__name__}: {error}")
    return Outcome("accepted", "")
