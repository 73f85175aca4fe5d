"""What the CLI's commands do, as plain library functions (the CLI only parses and prints).

Each job returns the ``report.json`` dictionary it wrote (DESIGN.md §4).
"""

from __future__ import annotations

import itertools
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from spikestream import __version__, ir
from spikestream._progress import progress, status
from spikestream.encoding import ENCODINGS, make_encoding
from spikestream.engine import KeyframePolicy, Stream
from spikestream.errors import InputError
from spikestream.hw import HardwareOptions
from spikestream.report import write_report

if TYPE_CHECKING:
    from spikestream.bench import BenchOptions
    from spikestream.masking import MaskConfig


@dataclass(frozen=True)
class RunOptions:
    """Options of ``spikestream run`` (and of the demo)."""

    encoding: str = "sigma-delta"  # one of spikestream.encoding.ENCODINGS
    threshold: float = 0.05  # θ of sigma-delta nodes (and of the frame-delta encoder)
    steps: int | None = None  # time steps per frame for direct/rate/radix/latency (None: encoder default)
    backend: str = "dense"
    frames: int | None = None  # stop after this many frames (None: the whole video)
    keyframe_every: int | None = None  # mark a keyframe every K frames (None: never)
    tile: tuple[int, int] = (16, 16)  # output tile size for per-tile work
    save_trace: bool = True
    mask: MaskConfig | None = None  # region mask on the input layer's delta events (spikestream.masking)
    pipeline: bool = False  # sparse backend: two frames in flight on two threads (Stream(pipeline=True))


def resolve_model(spec: str) -> tuple[ir.Graph, str]:
    """A model given as a path to a ``.nir`` file or as a zoo name -> (graph, description)."""
    from spikestream.frontend import from_torch, load_nir
    from spikestream.models import MODELS

    if spec in MODELS:
        entry = MODELS[spec]
        return from_torch(entry.build(), entry.input_shape), spec
    path = Path(spec)
    if path.suffix == ".nir" or path.exists():
        if not path.exists():
            raise InputError(f"cannot read model {spec!r}: no such file")
        return load_nir(path), str(path)
    raise InputError(f"unknown model {spec!r}: not a .nir file and not one of the zoo models: "
                     f"{', '.join(sorted(MODELS))}")


def prepare_graph(graph: ir.Graph, options: RunOptions) -> ir.Graph:
    """Apply the conversion an encoding needs (sigma-delta nodes for the sigma-delta encoding)."""
    from spikestream.passes import to_sigma_delta

    if options.encoding == "sigma-delta":
        return to_sigma_delta(graph, threshold=options.threshold)
    return graph


def make_run_encoding(options: RunOptions):
    if options.encoding not in ENCODINGS:
        raise InputError(f"unknown encoding {options.encoding!r}; choose one of: {', '.join(sorted(ENCODINGS))}")
    kwargs = {}
    if options.steps is not None:
        kwargs["steps"] = options.steps
    if options.encoding == "frame-delta":
        kwargs["threshold"] = options.threshold
    try:
        return make_encoding(options.encoding, **kwargs)
    except TypeError as error:
        raise InputError(f"encoding {options.encoding!r} does not take these options: {error}") from None


def stream_frames(graph: ir.Graph, frames: Iterable, options: RunOptions, total: int | None,
                  description: str, mask=None) -> tuple[Stream, list[np.ndarray], float]:
    """Run frames through a Stream with a progress bar; returns the stream, outputs and wall time.
    ``mask`` (a ``masking.RegionMasking``) gates the input deltas and sees every output."""
    stream = Stream(graph, make_run_encoding(options), backend=options.backend, mask=mask,
                    keyframe=KeyframePolicy(options.keyframe_every), tile=options.tile, pipeline=options.pipeline)
    bar = progress(frames, total=total, description=description)
    outputs = []
    start = time.perf_counter()
    results = stream(bar if options.frames is None else itertools.islice(bar, options.frames))
    try:
        for output in results:
            outputs.append(output)
            if mask is not None:
                mask.observe(output)  # (a stream with a mask runs one frame at a time)
    finally:
        results.close()  # a pipelined stream stops its worker thread, which reads the bar
        bar.close()  # the bar's last line now, before any message about how the run ended
    return stream, outputs, time.perf_counter() - start


def build_report(command: str, input_name: str, model: str, stream: Stream, wall_s: float, **extra) -> dict:
    trace = stream.trace
    report = {
        "command": command,
        "version": __version__,
        "input": input_name,
        "model": model,
        "encoding": stream.encoding.name,
        "steps": stream.encoding.steps,
        "backend": stream.trace.metadata.get("backend"),
        "frames": trace.frames,
        "wall_s": wall_s,
        "fps": trace.frames / wall_s if wall_s > 0 else None,
        "layers": [{**layer, "activity": layer["synops"] / layer["dense_macs"] if layer["dense_macs"] else 0.0}
                   for layer in trace.layer_summary()],
        "totals": trace.totals(),
    }
    if stream.pipeline:  # where the two stages were cut, and their measured times (None: not pipelined)
        report["pipeline"] = stream.pipeline_plan.as_dict() if stream.pipeline_plan else None
    report.update(extra)
    return report


def model_preprocess(spec: str) -> Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]] | None:
    """The zoo model's frame preprocessor (``ZooModel.preprocess``), or None for .nir files and plain models."""
    from spikestream.models import MODELS

    return MODELS[spec].preprocess if spec in MODELS else None


def _video_frames(video: str, graph: ir.Graph, limit: int | None,
                  preprocess: Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]] | None = None):
    """Frames of ``video`` resized to the model input; a preprocessor gets them gray and makes the model inputs."""
    from spikestream.data import read_frames

    channels, height, width = graph.input_shape if len(graph.input_shape) == 3 else (None, None, None)
    if channels is None:
        raise InputError(f"video input needs a model with a (C, H, W) input, this one takes {graph.input_shape}")
    path = Path(video)
    size = None if path.suffix == ".npy" else (width, height)  # arrays are taken as they are
    grayscale = channels == 1 or preprocess is not None
    frames = (f.image for f in read_frames(path, size=size, grayscale=grayscale, max_frames=limit))
    return frames if preprocess is None else preprocess(frames)


def _frame_total(video: str, limit: int | None) -> int | None:
    """Frames a run will stream, for its progress bar: the file's count (demuxed, not decoded), at most ``limit``."""
    from spikestream.data import video_info

    try:
        count = video_info(video).frames
    except InputError:
        return limit  # the reader reports the problem itself, with the frames it can get
    return count if limit is None else min(count, limit)


def run_video(video: str, model: str, out: str | os.PathLike, options: RunOptions = RunOptions(),
              hardware: HardwareOptions | None = None, html: bool = True) -> dict:
    """``spikestream run``: stream a video (or a .npy frame array) through a model, write report.json and
    report.html. With ``hardware``, also simulate the trace on that target (``hardware``, ``energy``
    sections, plots). ``html=False`` (sweep cells): report.json only, no plots and no report.html."""
    from spikestream import masking as region_masking
    from spikestream.hw import attach_geometry
    from spikestream.report import hardware_images, write_html_report

    graph, model_name = resolve_model(model)
    graph = prepare_graph(graph, options)
    frames = _video_frames(video, graph, options.frames, model_preprocess(model))
    masking = region_masking.masking_for_run(options.mask, graph, model)
    seen: list[np.ndarray] = []  # model inputs, kept for the mask overlay
    if masking is not None:
        frames = _kept(frames, seen)
    total = _frame_total(video, options.frames)
    stream, outputs, wall_s = stream_frames(graph, frames, options, total, f"run {Path(video).name}", mask=masking)
    if stream.trace.frames == 0:
        raise InputError(f"no frames could be read from {video!r}")
    attach_geometry(stream.trace, graph)  # saved with the trace: hardware studies rerun without the model
    stream.trace.metadata.setdefault("model", model_name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"threshold": options.threshold}
    if options.save_trace:
        extra["trace"] = str(stream.trace.save(out / "trace.npz"))
    images_before, images_after = [], []
    if hardware is not None:
        sections, result, plots = _hardware_sections(stream.trace, hardware, out, with_plots=html)
        extra.update(sections)
        images_after = hardware_images(result, plots) if html else []
    if masking is not None:
        extra["masking"] = masking.summary()
        priced = region_masking.generator_hardware(masking, hardware, result) if hardware else None
        extra["masking"].update(priced or {})
        decode = region_masking.detection_decoder(model)
        if html:
            images_before = region_masking.report_images(masking, seen, outputs, decode, Path(video).name)
    report = build_report("run", str(video), model_name, stream, wall_s, **extra)
    write_report(out, report)
    if html:
        write_html_report(out, report, stream.trace, images_before=images_before, images_after=images_after)
    return report


def _kept(frames: Iterable[np.ndarray], into: list) -> Iterator[np.ndarray]:
    for frame in frames:
        into.append(frame)
        yield frame


def _hardware_sections(trace, hardware: HardwareOptions, out: Path, with_plots: bool = True):
    """Simulate ``trace`` on a target, leave its plots as PNGs in ``out``; -> (report sections, result, plots)."""
    from spikestream.hw import run_hardware
    from spikestream.report import hardware_plots, write_hardware_pngs

    result, sections, energy = run_hardware(trace, hardware)
    if not with_plots:
        return sections, result, {}
    plots = hardware_plots(result, energy)
    sections["hardware"]["plots"] = [str(path) for path in write_hardware_pngs(out, plots)]
    return sections, result, plots


def simulate_trace(trace_path: str | os.PathLike, out: str | os.PathLike,
                   hardware: HardwareOptions | None = None) -> dict:
    """``spikestream simulate``: run a saved trace on a hardware target; writes report.json (``fps`` is the
    simulated target's throughput), report.html and the PNG plots."""
    from spikestream.engine import Trace
    from spikestream.report import hardware_images, write_html_report

    hardware = hardware or HardwareOptions()
    trace = Trace.load(trace_path)
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections, result, plots = _hardware_sections(trace, hardware, out)
    report = {"command": "simulate", "version": __version__, "input": str(trace_path),
              "model": trace.metadata.get("model"), "encoding": trace.metadata.get("encoding"),
              "steps": trace.metadata.get("steps"), "frames": trace.frames,
              "wall_s": time.perf_counter() - start, "fps": result.fps,
              "layers": [{**layer, "activity": layer["synops"] / layer["dense_macs"] if layer["dense_macs"] else 0.0}
                         for layer in trace.layer_summary()],
              "totals": trace.totals(), **sections}
    write_report(out, report)
    write_html_report(out, report, trace, images_after=hardware_images(result, plots))
    return report


DEMO_MODEL = "seg-motion"
DEMO_VIDEO = "vtest.avi"
DEMO_SYNTHETIC_FRAMES = 60  # length of the fallback clip when the sample video cannot be had
DEMO_VIDEO_NAME = "demo.mp4"
DEMO_VIDEO_SCALE = 2  # the annotated video shows the 384x288 model input twice as large, beside its panel
# Torch threads while the demo streams. Each frame is a few dozen small tensor ops; with two threads every
# op ends in a barrier, and on a loaded machine a descheduled worker stalls each one: measured 1.66 s/frame
# with 2 threads against 0.11 s/frame with 1 at a load of 8 on 2 cores.
DEMO_THREADS = 1


@contextmanager
def _torch_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class _DemoSource:
    """What the demo streams: model inputs paired with the gray frames they came from."""

    description: str  # report.json "input"
    pairs: Iterator[tuple[np.ndarray, np.ndarray]]  # (uint8 (H, W) frame, model input), lazily
    frames: int  # how many pairs the iterator yields
    fps: float
    reference: np.ndarray | None  # bool (frames, H, W) masks to score against, or None
    reference_key: str  # report key of the IoU against the reference
    first_frame: int = 0  # index in the video of the first streamed frame
    note: str | None = None  # said in the log and the HTML report (e.g. why the fallback was taken)


def _demo_source(entry, frames: int | None) -> _DemoSource:
    """The test frames of vtest.avi (the background estimate warmed up on the frames before them), or a
    synthetic clip if the video cannot be had."""
    import itertools

    from spikestream.data import SampleDataError, find_sample_video, moving_objects_clip, read_frames, video_info
    from spikestream.models.seg_motion import TEST_FRAMES, teacher_masks

    _, height, width = entry.input_shape
    try:
        path = find_sample_video(DEMO_VIDEO)
    except SampleDataError as error:
        count = frames or DEMO_SYNTHETIC_FRAMES
        note = (f"{DEMO_VIDEO} could not be had ({error}); the demo runs on a synthetic moving-objects clip "
                f"instead ({count} frames, {width}x{height}), scored against its ground-truth masks")
        status(f"demo: {note}")
        clip = moving_objects_clip(frames=count, height=height, width=width, objects=4, seed=0)
        return _DemoSource(f"synthetic:moving-objects(frames={count}, {width}x{height}, seed=0)",
                           zip(iter(clip.frames), entry.preprocess(iter(clip.frames)), strict=True), count,
                           10.0, clip.masks, "iou_vs_ground_truth", note=note)
    first = TEST_FRAMES.start
    count = min(frames or len(TEST_FRAMES), len(TEST_FRAMES))
    gray = (f.image for f in read_frames(path, size=(width, height), grayscale=True, max_frames=first + count))
    raw, feed = itertools.tee(gray)
    pairs = zip(raw, entry.preprocess(feed), strict=True)
    for _ in progress(itertools.islice(pairs, first), total=first,
                      description=f"background warm-up (frames 0-{first - 1})"):
        pass  # the model's running background sees the earlier frames; the network starts at `first`
    reference = teacher_masks(path)[first:first + count]
    return _DemoSource(f"{DEMO_VIDEO} frames {first}-{first + count - 1}", pairs, count, video_info(path).fps,
                       reference, "iou_vs_teacher", first_frame=first)


def demo(out: str | os.PathLike, frames: int | None = None, options: RunOptions = RunOptions()) -> dict:
    """``spikestream demo``: ``seg-motion`` as a sigma-delta network over the test frames of vtest.avi.

    Writes ``report.json``, ``report.html`` (self-contained plots), ``demo.mp4`` (the segmentation and the
    live activity, frame by frame) and ``trace.npz`` to ``out``. ``frames``: at most this many (default:
    all 195 test frames, 600-794). Without the video it says so and runs on a synthetic clip.
    """
    from spikestream.data import write_video
    from spikestream.models import MODELS
    from spikestream.models.seg_motion import foreground, mask_iou, predict
    from spikestream.report import HTML_NAME, ReportImage, annotate_frame, png_from_array, write_html_report

    begin = time.perf_counter()
    entry = MODELS[DEMO_MODEL]
    module = entry.build()
    graph = prepare_graph(resolve_model(entry.name)[0], options)
    source = _demo_source(entry, frames)
    status(f"demo: {source.description} through {entry.name} as a {options.encoding} network "
           f"(θ = {options.threshold})")
    images, inputs = [], []

    def model_inputs():
        for image, x in source.pairs:
            images.append(image)
            inputs.append(x.astype(np.float16))  # for the ANN comparison afterwards; half the memory
            yield x

    with _torch_threads(DEMO_THREADS):
        stream, outputs, wall_s = stream_frames(graph, model_inputs(), options, source.frames, "demo")
    masks = foreground(np.stack(outputs)[:, 0])  # (N, H, W)
    ann = foreground(predict(module, np.stack(inputs).astype(np.float32))[:, 0])
    trace = stream.trace
    macs = int(trace.dense_macs.sum())
    activity_series = trace.synops.sum(1) / macs
    layer_activity = trace.synops / np.maximum(trace.dense_macs, 1)  # (N, L)
    extra = {"threshold": options.threshold, "activity_per_frame": activity_series,
             "agreement_with_ann": mask_iou(masks, ann)}
    per_frame_iou = None
    if source.reference is not None:
        reference = source.reference[:len(masks)]
        per_frame_iou = [mask_iou(m, r) for m, r in zip(masks, reference, strict=True)]
        extra[source.reference_key] = mask_iou(masks, reference)
        extra[source.reference_key.replace("iou_", "iou_ann_")] = mask_iou(ann, reference)
        extra["iou_per_frame"] = per_frame_iou

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reference_name = "teacher" if source.reference_key == "iou_vs_teacher" else "ground truth"

    def annotated(index: int) -> np.ndarray:
        return annotate_frame(images[index], masks[index], trace.layers, layer_activity[index], activity_series,
                              index, reference=None if source.reference is None else source.reference[index],
                              reference_name=reference_name, scale=DEMO_VIDEO_SCALE,
                              caption=f"frame {source.first_frame + index}   theta = {options.threshold}")

    video = write_video(out / DEMO_VIDEO_NAME, (annotated(i) for i in range(len(masks))), fps=source.fps)
    extra["video"] = str(video)
    extra["html"] = str(out / HTML_NAME)
    from spikestream.hw import attach_geometry

    attach_geometry(trace, graph)  # lets `spikestream simulate --trace` price the demo's trace
    trace.metadata.setdefault("model", entry.name)
    extra["trace"] = str(trace.save(out / "trace.npz"))
    report = build_report("demo", source.description, entry.name, stream, wall_s, **extra)
    first_layer = trace.layers[0]
    still = len(masks) // 2
    write_html_report(out, report, trace, background=np.mean(images, axis=0).astype(np.uint8),
                      layer=first_layer, output_size=graph.shapes[first_layer][1:], iou=per_frame_iou,
                      first_frame=source.first_frame,
                      notes=[source.note] if source.note else (),
                      images_before=[ReportImage(f"Frame {source.first_frame + still} of the annotated video "
                                                 f"({DEMO_VIDEO_NAME})",
                                                 f"Left: the network's mask (red) and the {reference_name}'s "
                                                 "outline (green). Right: this frame's synops / dense MACs per "
                                                 "layer and the network's activity over the clip.",
                                                 png_from_array(annotated(still)))])
    report["demo_wall_s"] = time.perf_counter() - begin
    write_report(out, report)
    return report


def bench(out: str | os.PathLike, options: BenchOptions) -> dict:
    """``spikestream bench``: PyTorch (eager, compiled), dense and sparse sigma-delta and the SNN libraries
    timed on the same frames (``spikestream.bench``); writes report.json with ``rows``. Its ``fps`` is the
    sparse sigma-delta row's."""
    from spikestream.bench import run_bench

    start = time.perf_counter()
    report = run_bench(options)
    report.pop("_outputs")
    sparse = next(row for row in report["rows"] if row["name"] == "spikestream-sparse-sd")
    report.update(wall_s=time.perf_counter() - start, fps=sparse["fps"])
    write_report(out, report)
    return report


def train(model: str, out: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """``spikestream train NAME``: rerun the recipe that produced a zoo model's shipped weights."""
    from spikestream.models import WEIGHTS_DIR, get_model

    entry = get_model(model)
    if entry.train is None or entry.weights is None:
        raise InputError(f"model {model!r} has no training recipe (it ships seeded, untrained weights)")
    path = Path(out) if out is not None else WEIGHTS_DIR / entry.weights
    start = time.perf_counter()
    metrics = entry.train(path, seed=seed)
    return {"model": model, "weights": str(path), "seed": seed, "wall_s": time.perf_counter() - start, **metrics}


def compile_rtl(model: str, out: str | os.PathLike, **options) -> dict:
    """``spikestream compile``: quantize a model, generate its accelerator's Verilog, optionally simulate and
    synthesize it (``spikestream.rtl.compile_model``); writes report.json."""
    from spikestream.rtl import CompileOptions, compile_model

    return compile_model(model, out, CompileOptions(**options))


def info() -> dict:
    """``spikestream info``: version, compute devices, optional tools and where data is found."""
    from spikestream.data import data_locations

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return {
        "version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "devices": devices,
        "threads": torch.get_num_threads(),
        "encodings": sorted(ENCODINGS),
        "data": data_locations(),
    }
