"""Region-masking study (issue 6): writes docs/masking.md, docs/masking.json and docs/masking.png.

    .venv/bin/python benchmarks/masking.py                 # 16 held-out clips x 40 frames, ~5 min on 2 cores
    .venv/bin/python benchmarks/masking.py --clips 4       # a quick look

det-synth runs as a sigma-delta network at its operating point (DET_SIGMA_DELTA) over held-out synthetic
clips (a fresh state per clip; frame 0 of every clip passes whole). For every mask (static heatmap, MGNet,
static ∪ previous detections ∪ MGNet, previous detections) and masked fraction {0, 20, 40, 60, 80} % it
measures mAP@0.5 (pycocotools), input events, total synops (MGNet's own included), energy/frame, latency
and EDP on the neuromorphic model (loihi2 preset, MGNet's cost added) and frames/s on the FPGA model
(XC7Z035, 16 PEs, KWBS). The union's budget split is chosen on separate validation clips. Then
``spikestream run`` on vtest.avi with the union mask gives the overlay shown in the doc.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from spikestream.frontend import from_torch
from spikestream.masking import (
    MaskConfig,
    RegionGrid,
    evaluate_masked_detection,
    load_mgnet,
    masked_hardware_cost,
    region_recall,
)
from spikestream.metrics import mean_average_precision
from spikestream.models import get_model
from spikestream.models import synthetic_tasks as tasks
from spikestream.passes import to_sigma_delta
from spikestream.report import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
DOC, RESULTS, PLOT, OVERLAY = (ROOT / "docs" / name for name in ("masking.md", "masking.json", "masking.png",
                                                                  "masking-vtest.png"))
OUT = ROOT / "out" / "masking"
MASKED = (0.0, 0.2, 0.4, 0.6, 0.8)
KINDS = {"static": "static", "MGNet": "dynamic", "union": "union", "previous detections": "previous"}
TARGET = {"masked": 0.6, "edp_reduction": 1.65, "map_drop_points": 1.09}  # arXiv 2503.16775
STRETCH = {"edp_reduction": 2.0, "map_drop_points": 1.0}
VALIDATION_SEED_START = 2_000_000  # validation clips (union split): neither training nor evaluation seeds
UNION_SPLITS = ((0.1, 0.1), (0.1, 0.25), (0.25, 0.1), (0.25, 0.25))  # (static, previous) shares of the budget
RESAMPLES = 60  # paired bootstrap over clips for the mAP difference at the target point


def detector_graph():
    model = get_model("det-synth")
    config = tasks.DET_SIGMA_DELTA
    graph = to_sigma_delta(from_torch(model.build(), model.input_shape), config.threshold,
                           input_threshold=config.input_threshold)
    return graph, tasks.trained_texture(model)


def validation_clips(count: int, frames: int, texture: str):
    provider, _ = tasks.texture_source(texture, "test")
    return [tasks.task_clip(VALIDATION_SEED_START + i, frames, provider) for i in range(count)]


def measure(graph, clips, config: MaskConfig) -> tuple[dict, dict]:
    result = evaluate_masked_detection(graph, clips, config)
    cost = masked_hardware_cost(result["trace"], result["mask_generator_trace"])
    keys = ("mask", "keep", "nominal_masked_fraction", "masked_fraction", "map50", "frames",
            "input_events_per_frame", "detector_synops_per_frame", "mask_generator_synops_per_frame",
            "total_synops_per_frame", "dense_macs_per_frame", "wall_s")
    row = {key: result[key] for key in keys}
    breakdown = cost["detector"]["energy_breakdown_j_per_frame"]
    row.update({"energy_j_per_frame": cost["energy_j_per_frame"], "latency_s": cost["latency_s"], "edp": cost["edp"],
                "fpga_fps": cost["fpga_fps"], "static_energy_j_per_frame": breakdown["static"],
                "mask_generator_energy_j_per_frame": cost.get("mask_generator", {}).get("energy_j_per_frame", 0.0),
                "mask_generator_latency_s": cost.get("mask_generator", {}).get("latency_s", 0.0)})
    if config.kind == "union":
        row.update(static_share=config.static_share, previous_share=config.previous_share)
    return row, result


def paired_bootstrap(base: dict, other: dict, resamples: int, seed: int = 0) -> dict:
    """mAP(other) − mAP(base) in points, resampling clips with replacement (the same clips for both)."""
    rng = np.random.default_rng(seed)
    clips = len(base["truth"])
    differences = []
    for _ in range(resamples):
        pick = rng.integers(clips, size=clips)
        truth = [t for i in pick for t in base["truth"][i]]
        a = mean_average_precision([d for i in pick for d in base["detections"][i]], truth, 0.5)
        b = mean_average_precision([d for i in pick for d in other["detections"][i]], truth, 0.5)
        differences.append(100 * (b - a))
    low, high = np.percentile(differences, [2.5, 97.5])
    return {"resamples": resamples, "ci95_points": [float(low), float(high)], "std_points": float(np.std(differences))}


def mgnet_study(texture: str, clips) -> dict:
    grid = RegionGrid(64, 64, 8)
    module = load_mgnet()
    coverage = {}
    for keep in (0.2, 0.4, 0.6):
        count = grid.kept_regions(keep)
        covered = []
        for clip in clips:
            with torch.no_grad():
                logits = module(torch.from_numpy(clip.frames).float().div(255)[:, None])[:, 0].numpy()
            for cells, objects in zip(logits, clip.masks, strict=True):
                if objects.any():
                    kept = grid.top(grid.pool(np.kron(cells, np.ones((4, 4))), "max"), count)
                    covered.append(float(grid.to_pixels(kept)[objects].mean()))
        coverage[keep] = float(np.mean(covered))
    return {"region_recall": [region_recall(module, clips, 8, keep) for keep in (0.2, 0.4, 0.6)],
            "object_pixel_coverage": coverage,
            "dense_macs_per_frame": 64 * 64 * 4 + 16 * 16 * 4 * 4 * 9 + 16 * 16 * 4 * 9}


def vtest_overlay(frames: int) -> dict | None:
    """``spikestream run vtest.avi --model det-synth --mask union --keep 0.4``: its report and overlay."""
    from spikestream.data import SampleDataError, find_sample_video
    from spikestream.hw import HardwareOptions
    from spikestream.jobs import RunOptions, run_video

    try:
        video = find_sample_video("vtest.avi")
    except SampleDataError as error:
        print(f"  vtest.avi not available ({error}); no overlay", file=sys.stderr)
        return None
    out = OUT / "vtest"
    options = RunOptions(threshold=tasks.DET_SIGMA_DELTA.threshold, frames=frames,
                         mask=MaskConfig("union", keep=0.4))
    report = run_video(str(video), "det-synth", out, options, HardwareOptions(target="neuromorphic"))
    html = (out / "report.html").read_text()
    first = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    OVERLAY.write_bytes(base64.b64decode(first.group(1)))  # the report's first image is the mask overlay
    return {"command": vtest_command(frames), "masking": report["masking"],
            "report": str((out / "report.html").relative_to(ROOT))}


def vtest_command(frames: int) -> str:
    video = "\"$(.venv/bin/python -c 'from spikestream.data import find_sample_video as f; print(f(\"vtest.avi\"))')\""
    return (f"spikestream run {video} --model det-synth --mask union --keep 0.4 --threshold "
            f"{tasks.DET_SIGMA_DELTA.threshold} --frames {frames} --target neuromorphic --out out/masking/vtest")


# --- the document ------------------------------------------------------------------------------------


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = results["baseline"]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for label, rows in results["sweep"].items():
        masked = [100 * r["masked_fraction"] for r in rows]
        axes[0].plot(masked, [100 * r["map50"] for r in rows], "o-", label=label)
        axes[1].plot(masked, [base["edp"] / r["edp"] for r in rows], "o-", label=label)
        axes[2].plot(masked, [r["fpga_fps"] for r in rows], "o-", label=label)
    axes[0].axhline(100 * base["map50"] - TARGET["map_drop_points"], color="gray", ls=":", lw=1)
    axes[1].axhline(TARGET["edp_reduction"], color="gray", ls=":", lw=1)
    for axis, title in zip(axes, ("mAP@0.5 (%)", "EDP reduction vs unmasked (x), neuromorphic",
                                  "FPGA frames/s (XC7Z035, 16 PEs)"), strict=True):
        axis.set_xlabel("regions masked (%, measured over all frames)")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)
    plt.close(figure)


def _row(label: str, r: dict, base: dict) -> str:
    return (f"| {label} | {100 * r['nominal_masked_fraction']:.0f} | {100 * r['masked_fraction']:.1f} | "
            f"{100 * r['map50']:.2f} | {100 * (r['map50'] - base['map50']):+.2f} | "
            f"{r['input_events_per_frame']:,.0f} | "
            f"{r['total_synops_per_frame'] / 1e6:.3f} | {r['mask_generator_synops_per_frame'] / 1e3:.1f} | "
            f"{r['energy_j_per_frame'] * 1e6:.1f} | {r['latency_s'] * 1e3:.3f} | {r['edp'] * 1e9:.3f} | "
            f"{base['edp'] / r['edp']:.2f} | {r['fpga_fps']:,.0f} |")


def write_doc(results: dict) -> str:
    base, setup = results["baseline"], results["setup"]
    target = results["target"]
    lines = [
        "# Region masking for sigma-delta video detection",
        "",
        "_Generated by `.venv/bin/python benchmarks/masking.py` "
        f"({setup['clips']} held-out clips x {setup['frames']} frames; {setup['wall_s']:.0f} s). "
        "Numbers: docs/masking.json._",
        "",
        "A sigma-delta network sends only changes. Region masking cuts each 64x64 frame into 8x8-pixel regions "
        "(an 8x8 grid) and lets only a share `keep` of them send their input-layer delta events; a held pixel "
        "sends nothing and keeps its residual, so when its region passes again the whole change since it last "
        "sent goes out once (`spikestream.masking`, gate in `engine/_stateful.py`). Frame 0 of every clip "
        "passes whole; the measured masked fraction counts it as unmasked (so 60 % nominal is 58.5 % measured "
        "over 40-frame clips).",
        "",
        "Masks:",
        "- **static**: a heatmap of how many training-set boxes cover each pixel (100 det-synth training clips "
        "x 12 frames), normalised, summed over each region; the top `keep` share of regions, fixed.",
        "- **MGNet**: a learned mask generator on the current frame (1x1 conv 1→4 + ReLU per pixel, 4x4 max "
        "pool, 3x3 conv 4→4 + ReLU, 3x3 conv 4→1: one logit per 4x4-pixel cell; BCE on \"cell intersects a "
        "ground-truth box\"; `spikestream train mgnet`, ~30 s). A region scores its best cell, held one more "
        "frame so that a region an object has just left is refreshed once (no ghosts). MGNet runs as a graph "
        "through its own Stream; its synops, energy and latency are added to every cost below.",
        "- **previous detections**: regions under the previous frame's detections (score ≥ 0.1), blurred "
        "(σ = 4 px) so that neighbouring regions rank next.",
        "- **union**: static ∪ previous detections ∪ MGNet under one budget: the static mask's top "
        f"{setup['union_split'][0]:.2f} of the budget, then the previous detections' top "
        f"{setup['union_split'][1]:.2f}, then MGNet's ranking fills the rest (split chosen on "
        f"{setup['validation_clips']} validation clips, below).",
        "",
        "Costs: input events = events into the first layer; total synops = det-synth's + MGNet's; energy/frame, "
        "latency and EDP from the neuromorphic model (`loihi2` preset, one chip, `spikestream.hw`) with MGNet on "
        "the same chip in front of the detector: latencies add, dynamic energies add, the chip's static power is "
        "paid once over the slower stage's frame period (`masking.with_mask_generator`); FPGA frames/s from the "
        "PE-array model (XC7Z035, 16 PEs, KWBS), MGNet's frame time added (it shares the PE array). mAP@0.5 by "
        f"pycocotools over {base['frames']} frames.",
        "",
        "## Results",
        "",
        "| mask | masked nominal % | masked measured % | mAP@0.5 % | ΔmAP pt | input events/frame | total synops/frame "
        "(M) | MGNet synops/frame (k) | energy/frame (µJ) | latency (ms) | EDP (nJ·s) | EDP reduction x | "
        "FPGA frames/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, rows in results["sweep"].items():
        lines += [_row(label, r, base) for r in rows]
    lines += [
        "",
        "The 0 % rows are the unmasked sigma-delta network (no mask generator runs): the reference of every "
        "ΔmAP and EDP reduction.",
        "",
        "![mAP, EDP reduction and FPGA frames/s against the masked fraction](masking.png)",
        "",
        "## The target at about 60 % masked (union)",
        "",
        f"Published (arXiv 2503.16775): ~60 % masked → EDP {TARGET['edp_reduction']}x lower at "
        f"−{TARGET['map_drop_points']} pt mAP@0.5; stretch {STRETCH['edp_reduction']}x at "
        f"−{STRETCH['map_drop_points']} pt.",
        "",
        f"- measured: **{100 * target['masked_fraction']:.1f} % masked, EDP {target['edp_reduction']:.2f}x lower, "
        f"mAP@0.5 {target['map_drop_points']:+.2f} pt** (95 % interval of the difference over clips, paired "
        f"bootstrap: {target['bootstrap']['ci95_points'][0]:+.2f} to {target['bootstrap']['ci95_points'][1]:+.2f} pt).",
        f"- accuracy target (≤ {TARGET['map_drop_points']} pt lower): **{'met' if target['map_met'] else 'not met'}**; "
        f"EDP target (≥ {TARGET['edp_reduction']}x): **{'met' if target['edp_met'] else 'not met'}**; stretch: "
        f"**{'met' if target['stretch_met'] else 'not met'}**.",
        f"- best EDP reduction of any mask within {TARGET['map_drop_points']} pt of the unmasked mAP: "
        f"{target['best_within_budget']['edp_reduction']:.2f}x ({target['best_within_budget']['label']}, "
        f"{100 * target['best_within_budget']['masked_fraction']:.1f} % masked, "
        f"{target['best_within_budget']['map_drop_points']:+.2f} pt).",
        "",
        "Why the EDP falls short here: masking removes the events of regions without objects (sensor noise, "
        "and the background of panning clips), but most of a sigma-delta detector's work is the change around "
        "moving objects, which every accurate mask must keep. At the union's 60 % point the input events fall "
        f"{base['input_events_per_frame'] / target['row']['input_events_per_frame']:.2f}x but total synops only "
        f"{base['total_synops_per_frame'] / target['row']['total_synops_per_frame']:.2f}x. On the neuromorphic "
        "model the latency is set by the busiest core, whose work (the region around the objects) masking "
        "barely reduces, and static power is "
        f"{100 * base['static_energy_j_per_frame'] / base['energy_j_per_frame']:.0f} % of the unmasked energy per "
        "frame, so EDP follows the busiest core's time, roughly squared. MGNet itself adds "
        f"{target['row']['mask_generator_synops_per_frame'] / 1e3:.0f} k synops, "
        f"{target['row']['mask_generator_energy_j_per_frame'] * 1e6:.1f} µJ and "
        f"{target['row']['mask_generator_latency_s'] * 1e3:.2f} ms per frame (its 64x64x4 pixel layer's neuron "
        "updates dominate its time), which is why MGNet and the union cost more than they save at 20 % "
        "masked.",
        "",
        "## Union budget split (validation clips)",
        "",
        f"{setup['validation_clips']} clips with seeds from {VALIDATION_SEED_START:,} (neither training nor "
        "evaluation), 60 % masked; the split with the best mAP is used above (the spread, a few tenths of a "
        "point, is within the noise of 8 clips):",
        "",
        "| static share | previous-detections share | mAP@0.5 % | EDP (nJ·s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['static_share']:.2f} | {r['previous_share']:.2f} | {100 * r['map50']:.2f} | {r['edp'] * 1e9:.3f} |"
              for r in results["union_split_validation"]]
    mgnet = results["mgnet"]
    lines += [
        "",
        "## MGNet",
        "",
        f"Dense MACs per 64x64 frame: {mgnet['dense_macs_per_frame']:,} (det-synth's dense MACs: "
        f"{base['dense_macs_per_frame']:,.0f}; its sigma-delta synops: {base['total_synops_per_frame']:,.0f}). "
        "On the held-out clips:",
        "",
        "| keep | regions with a box that MGNet keeps | object pixels inside kept regions |",
        "|---|---|---|",
    ]
    coverage = {float(keep): share for keep, share in mgnet["object_pixel_coverage"].items()}  # JSON keys: str
    lines += [f"| {r['keep']:.1f} | {100 * r['recall']:.1f} % | {100 * coverage[r['keep']]:.1f} % |"
              for r in mgnet["region_recall"]]
    lines += [
        "",
        f"{100 * mgnet['region_recall'][0]['regions_with_objects']:.1f} % of the regions hold part of a box. "
        "The pixel layer starts as four brightness-threshold units (bright above 0.68/0.75, dark below "
        "0.22/0.15, gain 8). From PyTorch's default start the same training ended (during development) with only "
        "68 % of object pixels inside the kept 40 % of regions, and MGNet alone then cost 24 pt of mAP at 60 % "
        "masked on 8 held-out clips: the mask generator's recall is what the accuracy hangs on.",
        "",
    ]
    vtest = results.get("vtest")
    if vtest:
        masking = vtest["masking"]
        lines += [
            "## On a real video: vtest.avi",
            "",
            f"`{vtest_command(masking['frames'])}`",
            "",
            f"The union mask over vtest.avi (resized to det-synth's 64x64 gray input) held "
            f"{100 * masking['masked_fraction']:.1f} % of the regions over {masking['frames']} frames. The HTML "
            f"report (`out/masking/vtest/report.html`) shows it over four frames; the same image:",
            "",
            "![union mask over vtest.avi frames](masking-vtest.png)",
            "",
            "Tinted regions are held, clear ones (amber outline) send their deltas; green boxes are det-synth's "
            "detections scoring ≥ 0.3. det-synth is trained on synthetic shapes only, so on pedestrians its boxes "
            "(and hence the previous-detections part of the union) are not meaningful; the static part keeps the "
            "lower-middle lanes of the synthetic training set and MGNet picks regions whose pixels fall outside "
            "the background brightness band.",
            "",
        ]
    lines += [
        "## Reproduce",
        "",
        "```",
        ".venv/bin/python benchmarks/masking.py",
        "spikestream train mgnet      # MGNet's shipped weights (models/weights/mgnet.safetensors)",
        "spikestream run VIDEO --model det-synth --mask static|dynamic|previous|union|none --keep 0.4 --out OUT",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--validation-clips", type=int, default=8)
    parser.add_argument("--vtest-frames", type=int, default=200)
    parser.add_argument("--doc-only", action="store_true", help="rewrite docs/masking.md from docs/masking.json")
    args = parser.parse_args(argv)
    if args.doc_only:
        atomic_write_text(DOC, write_doc(json.loads(RESULTS.read_text())))
        return 0
    torch.set_num_threads(1)  # small tensors per frame: one thread is fastest on a shared 2-core machine
    start = time.perf_counter()
    graph, texture = detector_graph()
    clips = tasks.task_clips("heldout", args.clips, args.frames, texture)

    print("validation: union budget split", file=sys.stderr)
    validation = validation_clips(args.validation_clips, args.frames, texture)
    splits = []
    for static_share, previous_share in UNION_SPLITS:
        row, _ = measure(graph, validation, MaskConfig("union", keep=1 - TARGET["masked"], static_share=static_share,
                                                       previous_share=previous_share))
        splits.append(row)
        print(f"  static {static_share} previous {previous_share}: mAP {100 * row['map50']:.2f}", file=sys.stderr)
    best = max(splits, key=lambda r: (round(r["map50"], 4), -r["edp"]))
    split = (best["static_share"], best["previous_share"])

    print("evaluation", file=sys.stderr)
    base, base_result = measure(graph, clips, MaskConfig("none", keep=1.0))
    sweep, results_at_target = {}, {}
    for label, kind in KINDS.items():
        rows = [base]
        for masked in MASKED[1:]:
            extra = {"static_share": split[0], "previous_share": split[1]} if kind == "union" else {}
            row, result = measure(graph, clips, MaskConfig(kind, keep=round(1 - masked, 6), **extra))
            rows.append(row)
            if masked == TARGET["masked"]:
                results_at_target[label] = (row, result)
            print(f"  {label} {masked:.0%}: mAP {100 * row['map50']:.2f}, EDP x{base['edp'] / row['edp']:.2f}",
                  file=sys.stderr)
        sweep[label] = rows

    row, result = results_at_target["union"]
    drop = 100 * (base["map50"] - row["map50"])
    reduction = base["edp"] / row["edp"]
    within = [(label, r) for label, rows in sweep.items() for r in rows[1:]
              if 100 * (base["map50"] - r["map50"]) <= TARGET["map_drop_points"]]
    label, best_row = max(within, key=lambda item: base["edp"] / item[1]["edp"]) if within else ("none", base)
    target = {"row": row, "masked_fraction": row["masked_fraction"], "edp_reduction": reduction,
              "map_drop_points": -drop, "map_met": drop <= TARGET["map_drop_points"],
              "edp_met": reduction >= TARGET["edp_reduction"],
              "stretch_met": reduction >= STRETCH["edp_reduction"] and drop <= STRETCH["map_drop_points"],
              "bootstrap": paired_bootstrap(base_result, result, RESAMPLES),
              "best_within_budget": {"label": label, "masked_fraction": best_row["masked_fraction"],
                                     "edp_reduction": base["edp"] / best_row["edp"],
                                     "map_drop_points": 100 * (best_row["map50"] - base["map50"])}}
    print("MGNet study, vtest.avi overlay", file=sys.stderr)
    results = {
        "setup": {"clips": args.clips, "frames": args.frames, "validation_clips": args.validation_clips,
                  "region": 8, "union_split": split, "threshold": tasks.DET_SIGMA_DELTA.threshold,
                  "input_threshold": tasks.DET_SIGMA_DELTA.input_threshold, "texture": texture},
        "baseline": base, "sweep": sweep, "target": target, "union_split_validation": splits,
        "mgnet": mgnet_study(texture, clips),
        "vtest": vtest_overlay(args.vtest_frames) if args.vtest_frames else None,
    }
    results["setup"]["wall_s"] = time.perf_counter() - start
    DOC.parent.mkdir(parents=True, exist_ok=True)
    plot(results)
    atomic_write_text(RESULTS, json.dumps(results, indent=1, default=float))
    atomic_write_text(DOC, write_doc(results))
    print(f"wrote {DOC}, {RESULTS}, {PLOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
