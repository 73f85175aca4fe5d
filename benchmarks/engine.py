"""Engine benchmark: dense vs sparse sigma-delta vs PyTorch (eager, compiled) vs snnTorch/SpikingJelly.

    .venv/bin/python benchmarks/engine.py                      # vtest.avi + Megamind.avi, sweep, soak
    .venv/bin/python benchmarks/engine.py --quick              # a short smoke run
    .venv/bin/python benchmarks/engine.py --threads 1          # every row on one core

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
from spikestream.bench import PIPELINED_ROW, BenchOptions, load_model_frames, markdown_table, run_bench
from spikestream.engine import Stream
from spikestream.frontend import from_torch
from spikestream.passes import to_sigma_delta
from spikestream.report import atomic_write_text

DOCS = Path(__file__).resolve().parents[1] / "docs"
ALLCLOSE_ATOL, ALLCLOSE_RTOL = 1e-3, 1e-3  # sparse vs dense outputs (logits)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def segmentation_agreement(result: dict) -> dict:
    """IoU between the foreground masks (logit > 0) of every row and the eager ANN's, and sparse vs dense:
    the share of output values within allclose's tolerance, the largest and the mean difference."""
    outputs = result.pop("_outputs")
    masks = {name: out > 0 for name, out in outputs.items()}
    ann = masks["pytorch-eager-ann"]
    agreement = {name: iou(mask, ann[:len(mask)]) for name, mask in masks.items()}
    sparse, dense = outputs["spikestream-sparse-sd"], outputs["spikestream-dense-sd"]
    agreement["sparse_vs_dense"] = iou(masks["spikestream-sparse-sd"], masks["spikestream-dense-sd"])
    agreement["sparse_dense_allclose"] = bool(np.allclose(sparse, dense, atol=ALLCLOSE_ATOL, rtol=ALLCLOSE_RTOL))
    agreement["sparse_dense_close_fraction"] = float(np.isclose(sparse, dense, atol=ALLCLOSE_ATOL,
                                                                rtol=ALLCLOSE_RTOL).mean())
    agreement["sparse_dense_max_abs_diff"] = float(np.abs(sparse - dense).max())
    agreement["sparse_dense_mean_abs_diff"] = float(np.abs(sparse - dense).mean())
    if PIPELINED_ROW in outputs:  # two frames in flight must not change a single bit
        agreement["pipelined_identical_to_sparse"] = bool(np.array_equal(outputs[PIPELINED_ROW], sparse))
    return agreement


def teacher_iou(outputs: dict, model: str, video: str) -> dict:
    """Dataset IoU of every row's foreground against seg-motion's MOG2 teacher on the same frames."""
    if model != "seg-motion":
        return {}
    from spikestream.data import find_sample_video
    from spikestream.models.seg_motion import mask_iou, teacher_masks

    teacher = teacher_masks(Path(video) if Path(video).exists() else find_sample_video(video))
    return {name: mask_iou(out[:, 0] > 0, teacher[:len(out)]) for name, out in outputs.items()}


def activity_sweep(model: str, threshold: float, fractions, frames_per_point: int = 20) -> list[dict]:
    """Time per frame of dense and sparse streams on clips where a given fraction of input pixels change
    each frame; a last point (input_activity None) resets both streams before every frame, so every node
    sees everything change, as on a keyframe. The two streams take turns frame by frame."""
    module, entry, _ = load_model_frames(model, "vtest.avi", 1)
    graph = to_sigma_delta(from_torch(module, entry.input_shape), threshold=threshold)
    rng = np.random.default_rng(0)
    base = rng.random(entry.input_shape).astype(np.float32)
    points = []
    streams = {backend: Stream(graph, "sigma-delta", backend=backend, record_work=False)
               for backend in ("dense", "sparse")}
    for fraction in [*fractions, None]:
        frames, frame = [], base.copy()
        for _ in range(frames_per_point + 1):
            flip = rng.random(entry.input_shape[1:]) < (1.0 if fraction is None else fraction)
            frame = frame.copy()
            frame[:, flip] = rng.random((entry.input_shape[0], int(flip.sum()))).astype(np.float32)
            frames.append(frame)
        elapsed = dict.fromkeys(streams, 0.0)
        for stream in streams.values():
            stream.reset(clear_trace=True)
            stream.process(base)
            stream.process(frames[0])
        for frame in frames[1:]:
            for backend, stream in streams.items():
                start = time.perf_counter()
                if fraction is None:
                    stream.backend.reset(1)
                stream.process(frame)
                elapsed[backend] += time.perf_counter() - start
        point = {"input_activity": fraction}
        for backend, stream in streams.items():
            point[f"{backend}_ms"] = 1000 * elapsed[backend] / frames_per_point
            point[f"{backend}_activity"] = stream.trace.totals()["activity"]
        points.append(point)
        status(f"sweep: input activity {'reset' if fraction is None else f'{fraction:.3f}'}: dense "
               f"{point['dense_ms']:.1f} ms, sparse {point['sparse_ms']:.1f} ms")
    return points


def summary(result: dict) -> dict:
    """The sparse row against the baselines: speedups, efficiency, and IoU vs teacher next to the ANN's."""
    rows = {row["name"]: row for row in result["rows"]}
    sparse = rows["spikestream-sparse-sd"]
    out = {"sparse_over_eager": sparse["fps"] / rows["pytorch-eager-ann"]["fps"],
           "sparse_over_dense_sd": sparse["fps"] / rows["spikestream-dense-sd"]["fps"],
           "synops_over_dense_macs": sparse["synops_over_dense_macs"], "efficiency": sparse["efficiency"]}
    if "pytorch-compile-ann" in rows:
        out["sparse_over_compiled"] = sparse["fps"] / rows["pytorch-compile-ann"]["fps"]
    if PIPELINED_ROW in rows:
        pipelined = rows[PIPELINED_ROW]
        out["pipelined_over_eager"] = pipelined["fps"] / rows["pytorch-eager-ann"]["fps"]
        out["pipelined_over_sparse"] = pipelined["fps"] / sparse["fps"]
        out["pipelined_efficiency"] = pipelined["efficiency"]
        if "pytorch-compile-ann" in rows:
            out["pipelined_over_compiled"] = pipelined["fps"] / rows["pytorch-compile-ann"]["fps"]
    teacher = result["iou_vs_teacher"]
    if teacher:
        out["iou_points_sparse_minus_ann"] = 100 * (teacher["spikestream-sparse-sd"] - teacher["pytorch-eager-ann"])
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def profile(model: str, threshold: float, video: str, count: int, rounds: int = 3) -> dict:
    """Where a sparse frame's time goes: wall time per node (best of ``rounds`` passes over the same
    frames) and the rest of Stream.process (frame check, encoding, Trace counting, output decoding)."""
    module, entry, frames = load_model_frames(model, video, count)
    graph = to_sigma_delta(from_torch(module, entry.input_shape), threshold=threshold)
    stream = Stream(graph, "sigma-delta", backend="sparse", record_work=False)
    for frame in frames[:3]:  # compile or load the kernels
        stream.process(frame)
    best = None
    for _ in range(rounds):
        stream.reset(clear_trace=True)
        nodes = stream.backend.profile()
        start = time.perf_counter()
        for frame in frames:
            stream.process(frame)
        total = time.perf_counter() - start
        if best is None or total < best[0]:
            best = (total, dict(nodes))
    total, nodes = best
    per_frame = {name: 1000 * seconds / len(frames) for name, seconds in nodes.items()}
    return {"video": video, "frames": len(frames), "total_ms": 1000 * total / len(frames),
            "outside_nodes_ms": 1000 * total / len(frames) - sum(per_frame.values()),
            "nodes": [{"node": name, "kind": graph.nodes[name].kind, "shape": list(graph.shapes[name]), "ms": ms}
                      for name, ms in sorted(per_frame.items(), key=lambda item: -item[1])]}


def soak(model: str, threshold: float, total: int, warmup: int = 500, pipeline: bool = False) -> dict:
    """Stream ``total`` frames (looped vtest.avi) through the sparse backend, one frame at a time or
    pipelined; report RSS growth after warm-up."""
    module, entry, frames = load_model_frames(model, "vtest.avi", 795)
    graph = to_sigma_delta(from_torch(module, entry.input_shape), threshold=threshold)
    stream = Stream(graph, "sigma-delta", backend="sparse", record_work=False, pipeline=pipeline)
    samples = []
    baseline = None
    start = time.perf_counter()
    for index, _ in enumerate(stream(frames[i % len(frames)] for i in range(total))):
        if index + 1 == warmup:
            baseline = rss_mb()
        if (index + 1) % 500 == 0:
            samples.append((index + 1, rss_mb()))
    peak = max(rss for _, rss in samples if _ >= warmup)
    return {"frames": total, "warmup": warmup, "pipelined": pipeline, "rss_after_warmup_mb": baseline,
            "peak_rss_mb": peak, "growth_mb": peak - baseline, "wall_s": time.perf_counter() - start,
            "samples": samples, "trace_frames": stream.trace.frames}


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
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every row (default: torch's; 1 stays fair on a shared machine)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed passes per row, rows taking turns; each row keeps its fastest (default 5)")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threshold = args.threshold if args.threshold is not None else 0.05
    frames = 30 if args.quick else args.frames
    results = {"machine": {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "torch": torch.__version__,
                           "python": sys.version.split()[0], "load_average_at_start": os.getloadavg()[0]},
               "videos": {}}
    for video in args.videos:
        result = run_bench(BenchOptions(model=args.model, video=video, frames=frames, threshold=threshold,
                                        compile=not args.quick, threads=args.threads,
                                        rounds=1 if args.quick else args.rounds))
        outputs = dict(result["_outputs"])
        result["agreement"] = segmentation_agreement(result)
        result["iou_vs_teacher"] = teacher_iou(outputs, args.model, video)
        result["summary"] = summary(result)
        results["videos"][video] = result
        plot_rows(result["rows"], args.out / f"performance_{Path(video).stem}.png",
                  f"{args.model} on {frames} frames of {video}")
    fractions = [0.005, 0.02, 0.1, 0.3, 1.0] if args.quick else [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0]
    results["sweep"] = activity_sweep(args.model, threshold, fractions, 5 if args.quick else 20)
    results["crossover"] = plot_sweep([p for p in results["sweep"] if p["input_activity"] is not None],
                                      args.out / "performance_sweep.png")
    full, reset = results["sweep"][-2], results["sweep"][-1]
    results["full_activity_sparse_over_dense"] = full["sparse_ms"] / full["dense_ms"]
    results["reset_every_frame_sparse_over_dense"] = reset["sparse_ms"] / reset["dense_ms"]
    results["profile"] = profile(args.model, threshold, args.videos[0], frames, 1 if args.quick else args.rounds)
    results["soak"] = soak(args.model, threshold, 1000 if args.quick else args.soak, 200 if args.quick else 500)
    results["soak_pipelined"] = soak(args.model, threshold, 1000 if args.quick else args.soak,
                                     200 if args.quick else 500, pipeline=True)
    atomic_write_text(args.out / "performance.json", json.dumps(results, indent=2, default=float) + "\n")
    atomic_write_text(args.out / "performance.md", render(results, args, frames, threshold))
    print(f"wrote {args.out / 'performance.md'}")
    return 0


def render(results: dict, args, frames: int, threshold: float) -> str:
    lines = ["# Performance: event-driven sparse engine", "",
             f"Produced by `benchmarks/engine.py{' --quick' if args.quick else ''}"
             f"{f' --threads {args.threads}' if args.threads else ''}` on "
             f"{results['machine']['cpus']} CPU cores ({results['machine']['threads']} torch threads), "
             f"torch {results['machine']['torch']}. Model `{args.model}`, sigma-delta θ = {threshold}, "
             f"{frames} frames per video, decoded and preprocessed before timing; every row timed "
             f"{1 if args.quick else args.rounds} times, rows taking turns, fastest pass kept. "
             f"Load average when the run started: {results['machine']['load_average_at_start']:.2f}.", ""]
    for video, result in results["videos"].items():
        lines += [f"## {video}", "", markdown_table(result["rows"]), "",
                  f"![rows](performance_{Path(video).stem}.png)", ""]
        numbers = result["summary"]
        lines.append(f"Sparse sigma-delta: {numbers['sparse_over_eager']:.2f}x eager PyTorch"
                     + (f", {numbers['sparse_over_compiled']:.2f}x torch.compile" if "sparse_over_compiled" in numbers
                        else "")
                     + f", {numbers['sparse_over_dense_sd']:.2f}x dense sigma-delta; ideal speedup (dense MACs / "
                     f"synops) {1 / numbers['synops_over_dense_macs']:.1f}x, efficiency {numbers['efficiency']:.2f}"
                     + (f"; IoU vs teacher {numbers['iou_points_sparse_minus_ann']:+.2f} points from the ANN's"
                        if "iou_points_sparse_minus_ann" in numbers else "") + ".")
        if "pipelined_over_eager" in numbers:
            plan = result["pipeline"]
            lines.append(f"Sparse sigma-delta pipelined (two frames in flight on two threads, cut after "
                         f"`{plan['after']}`, stages measured at {plan['stage_ms'][0]:.2f} and "
                         f"{plan['stage_ms'][1]:.2f} ms per frame): {numbers['pipelined_over_eager']:.2f}x eager"
                         + (f", {numbers['pipelined_over_compiled']:.2f}x torch.compile"
                            if "pipelined_over_compiled" in numbers else "")
                         + f", {numbers['pipelined_over_sparse']:.2f}x the sparse row's frames/s at the same latency "
                         f"per frame; efficiency {numbers['pipelined_efficiency']:.2f}; outputs identical to the "
                         f"sparse row's: {result['agreement']['pipelined_identical_to_sparse']}.")
        agreement = result["agreement"]
        lines.append(f"Sparse vs dense sigma-delta: allclose (atol = rtol = {ALLCLOSE_ATOL:g}) = "
                     f"{agreement['sparse_dense_allclose']}, values within that tolerance "
                     f"{100 * agreement['sparse_dense_close_fraction']:.3f} %, max |Δ| = "
                     f"{agreement['sparse_dense_max_abs_diff']:.2e}, mean |Δ| = "
                     f"{agreement['sparse_dense_mean_abs_diff']:.1e}, foreground IoU = "
                     f"{100 * agreement['sparse_vs_dense']:.3f} %.")
        if result["iou_vs_teacher"]:
            lines.append("IoU vs teacher: " + ", ".join(f"{k} {100 * v:.1f} %"
                                                        for k, v in result["iou_vs_teacher"].items()) + ".")
        lines.append("Calibrated crossovers (share of full-activity scatter work): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in result["crossovers"].items()) + ".")
        lines.append("")
    lines += ["## Activity sweep", "", "| input activity | dense ms/frame | sparse ms/frame | synops/MACs |",
              "|---:|---:|---:|---:|"]
    for p in results["sweep"]:
        activity = "reset every frame" if p["input_activity"] is None else f"{p['input_activity']:.3f}"
        lines.append(f"| {activity} | {p['dense_ms']:.2f} | {p['sparse_ms']:.2f} | {p['sparse_activity']:.3f} |")
    lines += ["", "![sweep](performance_sweep.png)", "",
              f"Crossover ≈ {results['crossover']}; at 100 % input activity sparse/dense time = "
              f"{results['full_activity_sparse_over_dense']:.2f}; with both streams reset before every frame "
              f"(everything changes, every layer falls back to dense) "
              f"{results['reset_every_frame_sparse_over_dense']:.2f}.", "",
              "## Memory over a long stream", "",
              f"{results['soak']['frames']} frames (looped vtest.avi) through the sparse backend: RSS after "
              f"{results['soak']['warmup']} warm-up frames {results['soak']['rss_after_warmup_mb']:.1f} MB, peak after "
              f"{results['soak']['peak_rss_mb']:.1f} MB, growth {results['soak']['growth_mb']:.1f} MB; pipelined "
              f"(two threads): after warm-up {results['soak_pipelined']['rss_after_warmup_mb']:.1f} MB, peak after "
              f"{results['soak_pipelined']['peak_rss_mb']:.1f} MB, growth "
              f"{results['soak_pipelined']['growth_mb']:.1f} MB.", ""]
    lines += render_profile(results["profile"])
    return "\n".join(lines)


def render_profile(profile: dict) -> list[str]:
    nodes = [n for n in profile["nodes"] if n["ms"] >= 0.01]
    lines = ["## Where a sparse frame's time goes", "",
             f"{profile['frames']} frames of {profile['video']}, fastest pass: {profile['total_ms']:.2f} ms per frame "
             f"in Stream.process, of which {profile['outside_nodes_ms']:.2f} ms outside the network's nodes (frame "
             "check, encoding, Trace counting, output decoding). Per node (wall time per frame; a fused "
             "Add → ReLU → SigmaDelta chain is timed on its first node, a nearest upsampling read only as blocks "
             "is not recomputed after the first frame):", "",
             "| node | kind | shape | ms/frame | share |", "|---|---|---|---:|---:|"]
    for n in nodes:
        lines.append(f"| {n['node']} | {n['kind']} | {'x'.join(map(str, n['shape']))} | {n['ms']:.3f} | "
                     f"{100 * n['ms'] / profile['total_ms']:.1f} % |")
    return [*lines, ""]


if __name__ == "__main__":
    sys.exit(main())
