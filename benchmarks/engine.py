"""Engine benchmark: dense vs sparse sigma-delta vs PyTorch (eager, compiled) vs snnTorch/SpikingJelly.

    .venv/bin/python benchmarks/engine.py                      # vtest.avi + Megamind.avi, sweep, soak
    .venv/bin/python benchmarks/engine.py --quick              # a short smoke run

Writes docs/performance.md, docs/performance.json and docs/performance_*.png. Everything is measured
side by side in one process on the same frames; ratios, not absolute times, are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from itertools import pairwise
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from spikestream._progress import status
from spikestream.bench import BenchOptions, load_model_frames, markdown_table, run_bench
from spikestream.engine import Stream
from spikestream.frontend import from_torch
from spikestream.passes import to_sigma_delta
from spikestream.report import atomic_write_text

DOCS = Path(__file__).resolve().parents[1] / "docs"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def segmentation_agreement(result: dict) -> dict:
    """IoU between the foreground masks (logit > 0) of every row and the eager ANN's, and sparse vs dense."""
    outputs = result.pop("_outputs")
    masks = {name: out > 0 for name, out in outputs.items()}
    ann = masks["pytorch-eager-ann"]
    agreement = {name: iou(mask, ann[:len(mask)]) for name, mask in masks.items()}
    agreement["sparse_vs_dense"] = iou(masks["spikestream-sparse-sd"], masks["spikestream-dense-sd"])
    agreement["sparse_dense_allclose"] = bool(np.allclose(outputs["spikestream-sparse-sd"],
                                                          outputs["spikestream-dense-sd"], atol=1e-3, rtol=1e-3))
    agreement["sparse_dense_max_abs_diff"] = float(np.abs(outputs["spikestream-sparse-sd"]
                                                         - outputs["spikestream-dense-sd"]).max())
    return agreement


def teacher_iou(result_outputs: dict, model: str, video: str, frames: int) -> dict:
    """IoU against the model's teacher masks, where the zoo model provides them."""
    try:
        from spikestream.models.seg_motion import teacher_masks_for  # provided by the seg-motion module
    except ImportError:
        return {}
    teacher = teacher_masks_for(video, frames)
    return {name: float(np.mean([iou(o[0] > 0, t) for o, t in zip(out, teacher, strict=False)]))
            for name, out in result_outputs.items()}


def activity_sweep(model: str, threshold: float, fractions, frames_per_point: int = 20) -> list[dict]:
    """Time per frame of dense and sparse streams on clips where a given fraction of pixels change."""
    module, entry, _ = load_model_frames(model, "vtest.avi", 1)
    graph = to_sigma_delta(from_torch(module, entry.input_shape), threshold=threshold)
    rng = np.random.default_rng(0)
    base = rng.random(entry.input_shape).astype(np.float32)
    points = []
    streams = {backend: Stream(graph, "sigma-delta", backend=backend, record_work=False)
               for backend in ("dense", "sparse")}
    for fraction in fractions:
        frames, frame = [], base.copy()
        for _ in range(frames_per_point + 1):
            flip = rng.random(entry.input_shape[1:]) < fraction
            frame = frame.copy()
            frame[:, flip] = rng.random((entry.input_shape[0], int(flip.sum()))).astype(np.float32)
            frames.append(frame)
        point = {"input_activity": fraction}
        for backend, stream in streams.items():
            stream.reset(clear_trace=True)
            stream.process(base)
            stream.process(frames[0])
            start = time.perf_counter()
            for frame in frames[1:]:
                stream.process(frame)
            point[f"{backend}_ms"] = 1000 * (time.perf_counter() - start) / frames_per_point
            point[f"{backend}_activity"] = stream.trace.totals()["activity"]
        points.append(point)
        status(f"sweep: input activity {fraction:.3f}: dense {point['dense_ms']:.1f} ms, "
               f"sparse {point['sparse_ms']:.1f} ms")
    return points


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak(model: str, threshold: float, total: int, warmup: int = 500) -> dict:
    """Stream ``total`` frames (looped vtest.avi) through the sparse backend; report RSS growth after warm-up."""
    module, entry, frames = load_model_frames(model, "vtest.avi", 795)
    graph = to_sigma_delta(from_torch(module, entry.input_shape), threshold=threshold)
    stream = Stream(graph, "sigma-delta", backend="sparse", record_work=False)
    samples = []
    baseline = None
    start = time.perf_counter()
    for index in range(total):
        stream.process(frames[index % len(frames)])
        if index + 1 == warmup:
            baseline = rss_mb()
        if (index + 1) % 500 == 0:
            samples.append((index + 1, rss_mb()))
    peak = max(rss for _, rss in samples if _ >= warmup)
    return {"frames": total, "warmup": warmup, "rss_after_warmup_mb": baseline, "peak_rss_mb": peak,
            "growth_mb": peak - baseline, "wall_s": time.perf_counter() - start, "samples": samples,
            "trace_frames": stream.trace.frames}


def plot_rows(rows, path: Path, title: str) -> None:
    names = [r["name"] for r in rows if r["fps"] == r["fps"]]
    fps = [r["fps"] for r in rows if r["fps"] == r["fps"]]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    colors = ["#888" if n.startswith("pytorch") else "#2a7" if "sparse" in n else "#47c" if "spikestream" in n
              else "#c84" for n in names]
    ax.barh(names, fps, color=colors)
    ax.set_xlabel("frames per second (higher is better)")
    ax.set_title(title)
    ax.invert_yaxis()
    for y, value in enumerate(fps):
        ax.text(value, y, f" {value:.1f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(points, path: Path) -> float | None:
    x = [p["input_activity"] for p in points]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(x, [p["dense_ms"] for p in points], "o-", label="dense")
    ax.plot(x, [p["sparse_ms"] for p in points], "s-", label="sparse (calibrated fallback)")
    crossover = None
    for a, b in pairwise(points):
        if a["sparse_ms"] <= a["dense_ms"] and b["sparse_ms"] > b["dense_ms"]:
            crossover = b["input_activity"]
            break
    if crossover:
        ax.axvline(crossover, color="gray", ls=":", label=f"crossover ≈ {crossover:.0%}")
    ax.set_xscale("log")
    ax.set_xlabel("fraction of input pixels changing per frame")
    ax.set_ylabel("ms per frame")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return crossover


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="seg-motion")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threshold", type=float, default=None, help="θ (default: the model's bench θ or 0.05)")
    parser.add_argument("--videos", nargs="+", default=["vtest.avi", "Megamind.avi"])
    parser.add_argument("--soak", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="30 frames, no compile, short sweep and soak")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    threshold = args.threshold if args.threshold is not None else 0.05
    frames = 30 if args.quick else args.frames
    results = {"machine": {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "torch": torch.__version__,
                           "python": sys.version.split()[0]}, "videos": {}}
    for video in args.videos:
        result = run_bench(BenchOptions(model=args.model, video=video, frames=frames, threshold=threshold,
                                        compile=not args.quick))
        outputs = dict(result["_outputs"])
        result["agreement"] = segmentation_agreement(result)
        result["iou_vs_teacher"] = teacher_iou(outputs, args.model, video, frames)
        results["videos"][video] = result
        plot_rows(result["rows"], args.out / f"performance_{Path(video).stem}.png",
                  f"{args.model} on {frames} frames of {video}")
    fractions = [0.005, 0.02, 0.1, 0.3, 1.0] if args.quick else [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0]
    results["sweep"] = activity_sweep(args.model, threshold, fractions, 5 if args.quick else 20)
    results["crossover"] = plot_sweep(results["sweep"], args.out / "performance_sweep.png")
    full = results["sweep"][-1]
    results["full_activity_sparse_over_dense"] = full["sparse_ms"] / full["dense_ms"]
    results["soak"] = soak(args.model, threshold, 1000 if args.quick else args.soak, 200 if args.quick else 500)
    atomic_write_text(args.out / "performance.json", json.dumps(results, indent=2, default=float) + "\n")
    atomic_write_text(args.out / "performance.md", render(results, args, frames, threshold))
    print(f"wrote {args.out / 'performance.md'}")
    return 0


def render(results: dict, args, frames: int, threshold: float) -> str:
    lines = ["# Performance: event-driven sparse engine", "",
             f"Produced by `benchmarks/engine.py{' --quick' if args.quick else ''}` on "
             f"{results['machine']['cpus']} CPU cores ({results['machine']['threads']} torch threads), "
             f"torch {results['machine']['torch']}. Model `{args.model}`, sigma-delta θ = {threshold}, "
             f"{frames} frames per video, decoded and preprocessed before timing.", ""]
    for video, result in results["videos"].items():
        lines += [f"## {video}", "", markdown_table(result["rows"]), "",
                  f"![rows](performance_{Path(video).stem}.png)", ""]
        agreement = result["agreement"]
        lines.append(f"Sparse vs dense sigma-delta: allclose = {agreement['sparse_dense_allclose']}, "
                     f"max |Δ| = {agreement['sparse_dense_max_abs_diff']:.2e}, foreground IoU = "
                     f"{100 * agreement['sparse_vs_dense']:.3f} %.")
        if result["iou_vs_teacher"]:
            lines.append("IoU vs teacher: " + ", ".join(f"{k} {100 * v:.1f} %"
                                                        for k, v in result["iou_vs_teacher"].items()) + ".")
        lines.append("Calibrated crossovers (fraction of active pixels): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in result["crossovers"].items()) + ".")
        lines.append("")
    lines += ["## Activity sweep", "", "| input activity | dense ms/frame | sparse ms/frame | synops/MACs |",
              "|---:|---:|---:|---:|"]
    for p in results["sweep"]:
        lines.append(f"| {p['input_activity']:.3f} | {p['dense_ms']:.2f} | {p['sparse_ms']:.2f} | "
                     f"{p['sparse_activity']:.3f} |")
    lines += ["", "![sweep](performance_sweep.png)", "",
              f"Crossover ≈ {results['crossover']}; at 100 % activity sparse/dense time = "
              f"{results['full_activity_sparse_over_dense']:.2f}.", "",
              "## Memory over a long stream", "",
              f"{results['soak']['frames']} frames (looped vtest.avi) through the sparse backend: RSS after "
              f"{results['soak']['warmup']} warm-up frames {results['soak']['rss_after_warmup_mb']:.1f} MB, peak after "
              f"{results['soak']['peak_rss_mb']:.1f} MB, growth {results['soak']['growth_mb']:.1f} MB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
