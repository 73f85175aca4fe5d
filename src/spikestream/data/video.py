"""Video files in and out, through PyAV (FFmpeg); ``.npy`` arrays of frames count as videos too.

Reading
-------
``read_frames`` decodes one frame at a time, converts it to gray (FFmpeg's luma) or RGB, and
resizes it with OpenCV's ``INTER_AREA`` (pixel-area averaging, the right filter for shrinking).
``time_s`` is the presentation time in seconds after the first frame, (pts − pts₀) × time_base.

AVI files cannot store presentation times of reordered (B-)frames, so the pts FFmpeg attaches to
their decoded frames come out permuted within a few frames (``Megamind.avi`` reads 3, 5, 4, 6, …).
Frames leave the decoder in presentation order, so each gets the smallest pending timestamp of a
short look-ahead window (``REORDER_WINDOW`` frames); for well-formed files this changes nothing.

Damaged files: a file that is missing or that FFmpeg cannot parse raises ``VideoError`` at once.
Packets the decoder rejects as invalid are skipped, as FFmpeg's own tools do, so a *truncated*
file yields every frame before the cut and then ends; a file in which no frame decodes raises.
Whether a cut file opens at all depends on the container (AVI and Matroska: yes; an MP4 whose
index sits at its end: no, ``VideoError``). Container headers cannot tell a cut from a file with
repeat frames (``tree.avi`` announces 444 frames and holds 68 images), so no warning is attempted.

Writing
-------
``write_video`` encodes H.264 (libx264, CRF 18, no B-frames so that every container, AVI included,
keeps correct timestamps) or MJPEG where PyAV was built without libx264, into a temporary file in
the target folder that is renamed over the target only when complete.
"""

from __future__ import annotations

import heapq
import os
import tokenize
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from spikestream._atomic import atomic_path
from spikestream.errors import InputError

REORDER_WINDOW = 8  # frames of look-ahead for reordering timestamps; B-frame pyramids reorder ≤ 4
ARRAY_FPS = 25.0  # .npy arrays carry no clock; their frames are timed as if at this rate
H264_CRF = "18"  # libx264 constant-rate factor: visually lossless (0 is lossless, 23 the default)
MJPEG_QUANTIZER = (1, 3)  # MJPEG (qmin, qmax): near-lossless; FFmpeg's default is visibly blocky


class VideoError(InputError):
    """A video that cannot be read or written; the message is one line naming the file."""


@dataclass(frozen=True)
class VideoFrame:
    index: int  # position in the file, counting from 0 (start= skips ahead, the index does not restart)
    time_s: float  # presentation time in seconds after the file's first frame
    image: np.ndarray  # uint8 (H, W) gray or (H, W, 3) RGB; a .npy frame exactly as stored


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # frames read_frames yields: non-empty packets, counted by demuxing (no decoding)
    fps: float  # average frame rate (ARRAY_FPS for .npy arrays)
    size: tuple[int, int]  # (W, H) in pixels
    codec: str  # FFmpeg decoder name, or "npy"


def _is_array_file(path: Path) -> bool:
    return path.suffix.lower() == ".npy"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"cannot read video '{path}': no such file")
    if not path.is_file():
        raise VideoError(f"cannot read video '{path}': not a file")


def _open_container(path: Path) -> av.container.InputContainer:
    _check_file(path)
    try:
        container = av.open(str(path), mode="r", metadata_errors="replace")  # damaged tags must not stop decoding
    except av.error.FFmpegError as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise VideoError(f"cannot read video '{path}': not a video file PyAV can decode ({reason})") from error
    if not container.streams.video:
        container.close()
        raise VideoError(f"cannot read video '{path}': it has no video stream")
    return container


def _load_array(path: Path) -> np.ndarray:
    """The frames of a .npy file, memory-mapped: (N, H, W) or (N, C, H, W), uint8 or float."""
    _check_file(path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as error:  # header is a Python literal
        raise VideoError(f"cannot read video '{path}': not a .npy array NumPy can load ({error})") from error
    if array.ndim not in (3, 4) or not (array.dtype == np.uint8 or np.issubdtype(array.dtype, np.floating)):
        raise VideoError(f"cannot read video '{path}': expected frames (N, H, W) or (N, C, H, W) of uint8 or "
                         f"float, got {array.dtype} {array.shape}")
    return array


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if len(size) != 2 or any(isinstance(s, bool) or int(s) != s or s < 1 for s in size):
        raise ValueError(f"size must be (width, height) in positive pixels, not {size!r}")
    return int(size[0]), int(size[1])


def read_frames(path: str | os.PathLike, size: tuple[int, int] | None = None, grayscale: bool = True,
                max_frames: int | None = None, start: int = 0) -> Iterator[VideoFrame]:
    """Decode the frames of a video file one by one (see the module docstring for the rules).

    size: (W, H) to resize every frame to, or None to keep the file's size.
    grayscale: uint8 (H, W) luma; otherwise uint8 (H, W, 3) RGB.
    max_frames: stop after this many frames (None: all). start: skip the frames before this index
    (they are decoded and dropped, so the result is exact but not instant for large ``start``).

    A ``.npy`` file of frames (N, H, W) or (N, C, H, W), uint8 or float, is read as a video too,
    frame by frame as stored: ``size`` and ``grayscale`` do not apply (the shapes are the user's).
    The file is opened, and errors raised, before the first frame is requested.
    """
    path = Path(path)
    size = _check_size(size)
    if (max_frames is not None and max_frames < 0) or start < 0:
        raise ValueError(f"max_frames and start must be >= 0, got max_frames={max_frames}, start={start}")
    if _is_array_file(path):
        return _array_frames(_load_array(path), max_frames, start)
    return _decoded_frames(path, _open_container(path), size, grayscale, max_frames, start)


def _array_frames(array: np.ndarray, max_frames: int | None, start: int) -> Iterator[VideoFrame]:
    stop = len(array) if max_frames is None else min(len(array), start + max_frames)
    for index in range(start, stop):
        yield VideoFrame(index, index / ARRAY_FPS, np.array(array[index]))  # a copy, off the memory map


def _decoded_frames(path: Path, container: av.container.InputContainer, size: tuple[int, int] | None,
                    grayscale: bool, max_frames: int | None, start: int) -> Iterator[VideoFrame]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # decode on several threads; frames still come out in order
    time_base = float(stream.time_base) if stream.time_base is not None else 0.0
    origin = None  # the first frame's timestamp: times count from the first frame
    fps = float(stream.average_rate or stream.guessed_rate or ARRAY_FPS)
    stop = None if max_frames is None else start + max_frames
    try:
        if stop is not None and stop <= start:
            return
        decoded = _decode_skipping_damage(path, container, stream)
        for index, (frame, pts) in enumerate(_presentation_order(decoded, fps, time_base)):
            origin = pts if origin is None else origin
            if index < start:
                continue
            image = frame.to_ndarray(format="gray" if grayscale else "rgb24")  # (H, W) or (H, W, 3)
            if size is not None and (image.shape[1], image.shape[0]) != size:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            yield VideoFrame(index, (pts - origin) * time_base if time_base else index / fps, image)
            if stop is not None and index + 1 >= stop:
                return
    except av.error.FFmpegError as error:
        raise VideoError(f"cannot read video '{path}': decoding failed ({error})") from error
    finally:
        container.close()


def _decode_skipping_damage(path: Path, container: av.container.InputContainer,
                            stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    """Decode packet by packet, skipping packets FFmpeg rejects as invalid (as its own tools do).

    A cut-off last packet thus ends the video instead of failing it; only a file in which not
    one frame decodes raises.
    """
    frames = 0
    first_error = None
    for packet in container.demux(stream):  # the last, empty packet flushes the decoder
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError as error:
            first_error = first_error or error
            continue
        frames += len(decoded)
        yield from decoded
    if frames == 0 and first_error is not None:
        raise VideoError(f"cannot read video '{path}': no frame could be decoded ({first_error})")


def _presentation_order(frames: Iterable[av.VideoFrame], fps: float, time_base: float
                        ) -> Iterator[tuple[av.VideoFrame, int]]:
    """Pair each decoded frame with a presentation timestamp (in time_base units), non-decreasing.

    Decoded frames are already in presentation order; only their pts labels may be permuted (see
    the module docstring), so each frame takes the smallest pts of a window of pending ones.
    Missing pts fall back to the dts, then to one frame period after the previous timestamp.
    """
    period = max(round(1 / (fps * time_base)), 1) if time_base else 1
    pending: list[int] = []  # min-heap of timestamps not yet handed out
    waiting: deque[av.VideoFrame] = deque()  # frames in output order, waiting for their timestamp
    newest = None
    for frame in frames:
        stamp = frame.pts if frame.pts is not None else frame.dts
        if stamp is None:
            stamp = 0 if newest is None else newest + period
        newest = stamp if newest is None else max(newest, stamp)
        heapq.heappush(pending, stamp)
        waiting.append(frame)
        if len(waiting) > REORDER_WINDOW:
            yield waiting.popleft(), heapq.heappop(pending)
    while waiting:
        yield waiting.popleft(), heapq.heappop(pending)


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate, size and codec of a video (or of a .npy array of frames)."""
    path = Path(path)
    if _is_array_file(path):
        array = _load_array(path)
        return VideoInfo(len(array), ARRAY_FPS, (array.shape[-1], array.shape[-2]), "npy")
    with _open_container(path) as container:
        stream = container.streams.video[0]
        try:
            frames = sum(1 for packet in container.demux(stream) if packet.size > 0)  # empty ones repeat a frame
        except av.error.FFmpegError as error:
            raise VideoError(f"cannot read video '{path}': demuxing failed ({error})") from error
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        return VideoInfo(frames, fps, (stream.codec_context.width, stream.codec_context.height),
                         stream.codec_context.name)


def default_video_codec() -> str:
    """libx264 when this PyAV build has the encoder, else MJPEG (always built into FFmpeg)."""
    try:
        av.codec.Codec("libx264", "w")
    except (av.error.FFmpegError, ValueError):  # UnknownCodecError is a ValueError
        return "mjpeg"
    return "libx264"


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 25.0,
                codec: str | None = None) -> Path:
    """Encode frames, uint8 (H, W) gray or (H, W, 3) RGB, all of one shape, into a video file.

    The container comes from the file name (.mp4, .mkv, .avi, .mov); ``codec`` is "libx264" or
    "mjpeg" (None: ``default_video_codec()``). The file appears only when complete: frames go to
    a hidden temporary file beside it, which replaces ``path`` atomically at the end.
    """
    path = Path(path)
    codec = codec or default_video_codec()
    if codec not in ("libx264", "mjpeg"):
        raise ValueError(f"codec must be 'libx264' or 'mjpeg', not {codec!r}")
    if not fps > 0:
        raise ValueError(f"fps must be a positive number, not {fps!r}")
    if not path.parent.is_dir():
        raise VideoError(f"cannot write video '{path}': folder '{path.parent}' does not exist")
    with atomic_path(path) as partial:  # the temporary keeps the suffix, which picks the container
        try:
            container = av.open(str(partial), mode="w")
        except (av.error.FFmpegError, ValueError) as error:
            raise VideoError(f"cannot write video '{path}': no container format for '{path.suffix}' ({error}); "
                             f"use .mp4, .mkv, .avi or .mov") from error
        try:
            with container:
                _encode(container, iter(frames), Fraction(fps).limit_denominator(100_000), codec)
        except av.error.FFmpegError as error:
            raise VideoError(f"cannot write video '{path}': {error}") from error
    return path


def _encode(container: av.container.OutputContainer, frames: Iterator[np.ndarray], rate: Fraction,
            codec: str) -> None:
    first = next(frames, None)
    if first is None:
        raise ValueError("write_video needs at least one frame")
    shape = first.shape
    if first.dtype != np.uint8 or not (first.ndim == 2 or (first.ndim == 3 and shape[2] == 3)):
        raise ValueError(f"frames must be uint8 (H, W) or (H, W, 3), got {first.dtype} {shape}")
    height, width = shape[:2]
    pixel_format = "gray" if first.ndim == 2 else "rgb24"
    if codec == "libx264":
        stream = container.add_stream(codec, rate=rate, options={"crf": H264_CRF, "bf": "0"})
        even = width % 2 == 0 and height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 chroma needs even sides
    else:
        stream = container.add_stream(codec, rate=rate)
        stream.pix_fmt = "yuvj420p"
        stream.codec_context.qmin, stream.codec_context.qmax = MJPEG_QUANTIZER
    stream.width, stream.height = width, height
    for index, image in enumerate(_chain(first, frames)):
        if image.shape != shape or image.dtype != np.uint8:
            raise ValueError(f"frame {index} is {image.dtype} {image.shape}, but the first frame was "
                             f"uint8 {shape}: all frames must match")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=pixel_format)
        frame.pts = index  # in 1/rate units, the stream's default codec time base
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))  # flush the encoder's delayed frames


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
