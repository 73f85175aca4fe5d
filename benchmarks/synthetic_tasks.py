"""seg-synth and det-synth as ANNs and as sigma-delta networks on held-out synthetic video.

For each model: the ANN (``Stream(graph, "direct")``) and the sigma-delta network
(``Stream(to_sigma_delta(graph, θ, input_threshold=θ_in), "sigma-delta")``, state kept across each
clip's frames) run on the same held-out clips; the table gives mIoU or mAP@0.5, synops, dense MACs
and their ratio for a few θ, and checks the acceptance targets:

- seg-synth: sigma-delta mIoU within 1.0 point of the ANN, with at least 5x fewer synops than the
  ANN's dense MACs;
- det-synth: sigma-delta mAP@0.5 within 1.5 points of the ANN.

``--retrain`` first reruns both training recipes into a temporary folder, records their wall time
and checks that they reproduce the shipped weights tensor for tensor.

    .venv/bin/python benchmarks/synthetic_tasks.py            # -> docs/synthetic_tasks.{md,json}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from spikestream import __version__
from spikestream.frontend import from_torch
from spikestream.models import WEIGHTS_DIR, get_model
from spikestream.models import synthetic_tasks as tasks
from spikestream.models.train import SigmaDeltaConfig
from spikestream.report import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
SEG_MIOU_TOLERANCE_PT = 1.0  # acceptance: |mIoU(sigma-delta) − mIoU(ANN)| in points
SEG_MIN_SAVING = 5.0  # acceptance: ANN dense MACs / sigma-delta synops
DET_MAP_TOLERANCE_PT = 1.5  # acceptance: |mAP@0.5(sigma-delta) − mAP@0.5(ANN)| in points
THRESHOLDS = (  # (θ hidden, θ input); the models' operating points are added
    (0.05, 0.05),
    (0.1, 0.08),
    (0.2, 0.08),
    (0.3, 0.1),
)

MODELS = {
    "seg-synth": (tasks.evaluate_segmentation, "miou", tasks.SEG_SIGMA_DELTA),
    "det-synth": (tasks.evaluate_detection, "map50", tasks.DET_SIGMA_DELTA),
}


def measure(name: str, clips: int, frames: int) -> dict:
    evaluate, metric, operating_point = MODELS[name]
    entry = get_model(name)
    graph = from_torch(entry.build(), entry.input_shape)
    texture = tasks.trained_texture(entry)
    heldout = tasks.task_clips("heldout", clips, frames, texture)
    ann = evaluate(graph, heldout)
    ann_row = {"mode": "ANN", "threshold": None, "input_threshold": None, **ann}
    points = sorted({*THRESHOLDS, (operating_point.threshold, operating_point.input_threshold)})
    rows = [ann_row]
    for threshold, input_threshold in points:
        result = evaluate(graph, heldout, SigmaDeltaConfig(threshold, input_threshold))
        rows.append({"mode": "sigma-delta", "threshold": threshold, "input_threshold": input_threshold,
                     "operating_point": (threshold, input_threshold) == (operating_point.threshold,
                                                                        operating_point.input_threshold),
                     "saving_vs_ann_dense": ann["dense_macs"] / max(result["synops"], 1), **result})
    for row in rows:
        row["metric_delta_pt"] = 100 * (row[metric] - ann[metric])
    operating = next(r for r in rows if r.get("operating_point"))
    delta = abs(operating["metric_delta_pt"])
    if name == "seg-synth":
        met = delta <= SEG_MIOU_TOLERANCE_PT and operating["saving_vs_ann_dense"] >= SEG_MIN_SAVING
        target = (f"|ΔmIoU| ≤ {SEG_MIOU_TOLERANCE_PT} pt and ≥ {SEG_MIN_SAVING:g}x fewer synops than "
                  "the ANN's dense MACs")
    else:
        met = delta <= DET_MAP_TOLERANCE_PT
        target = f"|ΔmAP@0.5| ≤ {DET_MAP_TOLERANCE_PT} pt"
    return {"model": name, "metric": metric, "texture": texture, "clips": clips, "frames_per_clip": frames,
            "target": target, "target_met": bool(met), "rows": rows}


def retrain(name: str, folder: Path) -> dict:
    """Rerun the training recipe; wall time and whether every tensor equals the shipped one."""
    entry = get_model(name)
    path = folder / entry.weights
    start = time.perf_counter()
    metrics = entry.train(path, seed=0)
    wall_s = time.perf_counter() - start
    shipped, fresh = load_file(str(WEIGHTS_DIR / entry.weights)), load_file(str(path))
    identical = shipped.keys() == fresh.keys() and all(torch.equal(shipped[k], fresh[k]) for k in shipped)
    largest = max(float((shipped[k].float() - fresh[k].float()).abs().max()) for k in shipped)
    return {"wall_s": wall_s, "cpu_s": metrics["train_cpu_s"], "load_average": os.getloadavg(),
            "texture": metrics["texture"], "reproduces_shipped_weights": bool(identical),
            "max_abs_weight_difference": largest, "metric": MODELS[name][1],
            "before_fine_tune": metrics["before_fine_tune"],
            "after_fine_tune": {"ann": metrics["ann"], "sigma_delta": metrics["sigma_delta"]}}


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(results: dict) -> str:
    lines = [
        "# Synthetic tasks: ANN vs sigma-delta",
        "",
        "Produced by `benchmarks/synthetic_tasks.py` (numbers also in `synthetic_tasks.json`). Held-out clips:",
        f"{results['clips']} clips x {results['frames_per_clip']} frames of 64x64 synthetic video "
        f"(seeds from {tasks.HELDOUT_SEED_START}; training used seeds below).",
        "The ANN runs as `Stream(graph, \"direct\")`; the sigma-delta network as",
        "`Stream(to_sigma_delta(graph, θ, input_threshold=θ_in), \"sigma-delta\")` with its state kept across",
        "the frames of a clip (the first frame of each clip is sent whole). `synops/dense` divides the",
        "row's synops by the dense MACs of the same frames; `saving` is ANN dense MACs / sigma-delta synops.",
        "The ANN's synops count its non-zero activations (event-driven execution of the ANN).",
        "",
        f"Machine: {results['machine']}; spikestream {results['version']}, torch {results['torch']}.",
        "",
    ]
    for model in results["models"]:
        metric = "mIoU" if model["metric"] == "miou" else "mAP@0.5"
        lines += [f"## {model['model']}", "",
                  f"Textures: **{model['texture']}**. Target: {model['target']} — "
                  f"**{'met' if model['target_met'] else 'MISSED'}** at the operating point (marked *).", ""]
        extra = " | binary mIoU" if model["metric"] == "miou" else ""
        lines += [f"| mode | θ | θ_in | {metric} | Δ (pt){extra} | synops | dense MACs | synops/dense | saving |",
                  "|---|---|---|---|---|---|---|---|---|" + ("---|" if extra else "")]
        for row in model["rows"]:
            mode = row["mode"] + (" *" if row.get("operating_point") else "")
            binary = f" | {100 * row['binary_miou']:.2f}" if extra else ""
            lines.append(
                f"| {mode} | {_fmt(row['threshold'], 2)} | {_fmt(row['input_threshold'], 2)} | "
                f"{100 * row[model['metric']]:.2f} | {row['metric_delta_pt']:+.2f}{binary} | {row['synops']:,} | "
                f"{row['dense_macs']:,} | {row['activity']:.4f} | "
                f"{_fmt(row.get('saving_vs_ann_dense'), 1)}{'x' if row.get('saving_vs_ann_dense') else ''} |")
        if model["metric"] == "miou":
            ann = model["rows"][0]["iou_per_class"]
            lines += ["", "ANN IoU per class: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in ann.items())]
        lines.append("")
    if results.get("training"):
        lines += ["## Training", "",
                  "`spikestream train NAME` reruns the recipe (`SyntheticRecipe` in "
                  "`spikestream/models/synthetic_tasks.py`): ANN epochs on single frames, then sigma-delta "
                  "fine-tuning (`models.train.fit_sigma_delta`) on runs of 6 consecutive frames at the operating "
                  "point, with the sparsity penalty. The check compares every tensor with the shipped file. "
                  "CPU time is the process's own (all threads); the wall time depends on what else the machine ran "
                  "(load average shown).", "",
                  "| model | textures | wall (s) | CPU (s) | load avg (1/5/15 min) | reproduces shipped weights |",
                  "|---|---|---|---|---|---|"]
        for name, run in results["training"].items():
            load = "/".join(f"{x:.1f}" for x in run["load_average"])
            difference = run["max_abs_weight_difference"]
            same = "yes" if run["reproduces_shipped_weights"] else f"no (max diff {difference:.1e})"
            lines.append(f"| {name} | {run['texture']} | {run['wall_s']:.0f} | {run['cpu_s']:.0f} | {load} | {same} |")
        lines += ["", "Why fine-tune: the same held-out check (4 clips x 40 frames, at the operating point) on the "
                  "ANN before and after sigma-delta fine-tuning.", "",
                  "| model | stage | ANN | sigma-delta | Δ (pt) | sigma-delta synops/dense |",
                  "|---|---|---|---|---|---|"]
        for name, run in results["training"].items():
            metric = run["metric"]
            for stage in ("before_fine_tune", "after_fine_tune"):
                pair = run[stage]
                if not pair:
                    continue
                ann, sd = pair["ann"][metric], pair["sigma_delta"][metric]
                lines.append(f"| {name} | {stage.replace('_', ' ')} | {100 * ann:.2f} | {100 * sd:.2f} | "
                             f"{100 * (sd - ann):+.2f} | {pair['sigma_delta']['activity']:.4f} |")
        lines.append("")
    lines += ["Reproduce: `.venv/bin/python benchmarks/synthetic_tasks.py"
              + (" --retrain" if results.get("training") else "") + "`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="held-out clips")
    parser.add_argument("--frames", type=int, default=50, help="frames per held-out clip")
    parser.add_argument("--retrain", action="store_true", help="also rerun the training recipes (minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "synthetic_tasks.md")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    results = {"version": __version__, "torch": torch.__version__,
               "machine": f"{platform.machine()}, {args.threads} torch threads",
               "clips": args.clips, "frames_per_clip": args.frames, "models": []}
    if args.retrain:
        with tempfile.TemporaryDirectory() as folder:
            results["training"] = {name: retrain(name, Path(folder)) for name in MODELS}
    for name in MODELS:
        results["models"].append(measure(name, args.clips, args.frames))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
    atomic_write_text(args.out, markdown(results))
    for model in results["models"]:
        print(f"{model['model']}: target {'met' if model['target_met'] else 'MISSED'} ({model['target']})")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
