"""``spikestream compile``: a model to verified, measured Verilog in one call (E3NE's flow).

    model ─> quantize (E3NE power-of-two rule, T bits) ─> lower to stages ─> choose the parallelism
          (given, checked against the device before anything is built; or the fastest configuration that
          fits, by the DSE model) ─> Amaranth ─> Verilog ─> [simulate N Fashion-MNIST images, compare
          with the integer reference] ─> [Yosys synth_xilinx, power estimate] ─> report.json, pareto.png

The output folder holds ``<top>.v``, ``testbench/`` (the cocotb testbench, its simulation top, the
stimulus of the verified images), ``pareto.png`` and ``report.json``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikestream import __version__, ir
from spikestream._atomic import atomic_write_bytes
from spikestream._progress import status
from spikestream.errors import InputError
from spikestream.report import write_report
from spikestream.rtl._config import parse_parallel
from spikestream.rtl._lowering import HardwarePlan, lower
from spikestream.rtl.dse import check_fits, estimate, explore, pareto_plot
from spikestream.rtl.generate import DEFAULT_PIXELS_PER_BEAT, TOP_NAME, generate
from spikestream.rtl.reference import IntegerReference
from spikestream.rtl.synth import DEFAULT_CLOCK_MHZ, device_table, estimate_power, synthesize

FASHION_MNIST_SHAPE = (1, 28, 28)
# The automatic choice keeps the model's estimate under 70% of every device resource: headroom for the
# model's error and for placement and routing (a common rule of thumb for 7-series designs).
DEFAULT_UTILIZATION = 0.7
CALIBRATION_IMAGES = 2000  # first training images for the activation ranges (as models.fmnist)


@dataclass(frozen=True)
class CompileOptions:
    """Options of ``spikestream compile``."""

    device: str = "xc7z020"  # FPGA of presets/fpga.toml
    parallel: str | None = None  # "--parallel" text; None or "auto": the fastest configuration that fits
    bits: int = 4  # T, radix bits of every activation
    weight_bits: int = 4  # signed weight bits
    verify: int = 0  # Fashion-MNIST test images to simulate (0: none)
    simulator: str = "icarus"  # icarus or verilator
    synth: bool = False  # run Yosys synthesis
    clock_mhz: float = DEFAULT_CLOCK_MHZ  # clock at which latency and power are quoted
    pixels_per_beat: int | None = None  # input pixels per stream beat (None: the most, up to 4, that divide a row)
    max_luts: float | None = None  # extra LUT budget for the automatic choice
    utilization: float = DEFAULT_UTILIZATION  # the automatic choice's estimate stays under this share of the device
    accuracy_images: int = 1000  # test images for the quantized model's accuracy (0: skip)
    timeout_s: float = 3600.0  # per external tool run


def quantized_model(spec: str, bits: int, weight_bits: int) -> tuple[ir.Graph, ir.Graph | None, str]:
    """(quantized graph, float graph or None, name) of a zoo model, a .nir file, or an already quantized
    graph. Calibration uses Fashion-MNIST training images, so float models must take (1, 28, 28)."""
    from spikestream.engine import radix_bits
    from spikestream.jobs import resolve_model
    from spikestream.passes import quantize

    graph, name = resolve_model(spec)
    if radix_bits(graph) is not None:
        return graph, None, name
    if tuple(graph.input_shape) != FASHION_MNIST_SHAPE:
        raise InputError(f"compile quantizes float models with Fashion-MNIST calibration images of shape "
                         f"{FASHION_MNIST_SHAPE}; {name!r} takes {graph.input_shape}. Give an already quantized "
                         "graph instead")
    from spikestream.models.fmnist import fashion_mnist_tensors

    calibration = fashion_mnist_tensors("train", CALIBRATION_IMAGES)[0]
    return quantize(graph, calibration, bits=bits, weight_bits=weight_bits), graph, name


def default_pixels_per_beat(plan: HardwarePlan) -> int:
    """The most pixels per beat, up to ``DEFAULT_PIXELS_PER_BEAT``, that divide an input row (or the inputs)."""
    row = plan.input_shape[-1]
    return max(b for b in range(1, DEFAULT_PIXELS_PER_BEAT + 1) if row % b == 0)


def fashion_mnist_test_images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` Fashion-MNIST test images (N, 1, 28, 28) uint8 and labels."""
    from spikestream.data.fashion_mnist import load_fashion_mnist

    images, labels = load_fashion_mnist("test")
    return images[:count, None], labels[:count]


def model_accuracy(quantized: ir.Graph, float_graph: ir.Graph | None, plan: HardwarePlan, count: int) -> dict:
    """Accuracy on the first ``count`` test images: integer reference, the same network in float32
    (fake quantization) and the float model; also per-layer events, synops and dense MACs."""
    import torch

    from spikestream.engine import LayerCounter, RadixExecutor
    from spikestream.rtl.reference import float_quantized_logits

    images, labels = fashion_mnist_test_images(count)
    reference = IntegerReference(plan)
    predicted = reference.classify(images)
    result = {"images": int(count), "integer_reference": float((predicted == labels).mean())}
    executor = RadixExecutor(quantized)
    engine = executor.run(executor.quantize(torch.from_numpy(images).float() / 255.0))
    result["engine_radix_bit_exact"] = bool(np.array_equal(engine.output.numpy().astype(np.int64),
                                                           reference.run(reference.encode(images)).output))
    if float_graph is not None:
        from spikestream.engine import GraphExecutor

        fake = float_quantized_logits(float_graph, quantized, images)
        result["float_quantized"] = float((fake.argmax(1) == labels).mean())
        executor_float = GraphExecutor(float_graph)
        executor_float.reset(len(images))
        logits = executor_float.step(torch.from_numpy(images).float() / 255.0).output
        result["float"] = float((logits.argmax(1).numpy() == labels).mean())
    layers = []
    for index, name in enumerate(quantized.synaptic_layers()):
        source = quantized.predecessors(name)[0]
        counter = LayerCounter(quantized.nodes[name], quantized.shapes[source], quantized.shapes[name])
        layers.append({"name": name, "events": int(engine.events[:, index].sum()),
                       "synops": int(engine.synops[:, index].sum()), "dense_macs": int(counter.dense_macs * count)})
    result["layers"] = layers
    return result


def compile_model(model: str, out: str | os.PathLike, options: CompileOptions = CompileOptions()) -> dict:
    """Compile ``model`` to Verilog in ``out`` (module docstring); returns the report.json dictionary."""
    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = device_table(options.device)
    quantized, float_graph, name = quantized_model(model, options.bits, options.weight_bits)
    plan = lower(quantized)
    beat = options.pixels_per_beat or default_pixels_per_beat(plan)
    options = dataclasses.replace(options, pixels_per_beat=beat)
    status(f"compile: {name}, {len(plan.stages)} layers, T = {plan.bits}, {plan.weight_bits}-bit weights")

    automatic = options.parallel in (None, "", "auto")
    if not automatic:  # a given configuration is checked against the device before anything is built
        parallelism = parse_parallel(options.parallel, plan)
        check_fits(estimate(plan, parallelism, options.pixels_per_beat), device)
    exploration = explore(plan, device, options.pixels_per_beat, max_luts=options.max_luts,
                          utilization=options.utilization)
    if automatic:
        if exploration.best is None:
            raise InputError(f"no configuration of {name} fits {device.name} in the explored space")
        parallelism = exploration.best.parallelism
    chosen = estimate(plan, parallelism, options.pixels_per_beat)
    check_fits(chosen, device)

    design = generate(plan, parallelism, options.pixels_per_beat, TOP_NAME)
    verilog_path = design.write(out / f"{design.top}.v")
    _write_testbench(out / "testbench")
    rtl = {"top": design.top, "verilog": str(verilog_path), "parallelism": parallelism.as_dict(plan),
           "parallel": parallelism.text(plan), "pixels_per_beat": options.pixels_per_beat, "bits": plan.bits,
           "weight_bits": plan.weight_bits, "clock_mhz": options.clock_mhz, "model_estimate": chosen.as_dict(),
           "generate_s": design.generate_s,
           "dse": {"candidates": len(exploration.candidates), "feasible": len(exploration.feasible),
                   "pareto": [e.as_dict() for e in exploration.pareto], "budget": exploration.budget}}
    accuracy = None
    if options.accuracy_images:
        accuracy = model_accuracy(quantized, float_graph, plan, options.accuracy_images)
        status(f"compile: integer reference accuracy {accuracy['integer_reference']:.4f} on "
               f"{accuracy['images']} test images")

    cycles, verification = chosen.latency_cycles, None
    measured_points = None
    if options.verify:
        from spikestream.rtl.verify import verify

        images, _ = fashion_mnist_test_images(options.verify)
        verification = verify(design, images, out / "testbench", options.simulator, 1000 / options.clock_mhz,
                              options.timeout_s, measure_activity=options.simulator == "verilator")
        rtl["verification"] = verification.summary()
        if not verification.bit_exact:
            bad = [i for i in range(verification.images) if not np.array_equal(verification.outputs[i],
                                                                                verification.expected[i])]
            raise InputError(f"the simulated design differs from the integer reference on images {bad[:10]}; "
                             f"see {verification.log}")
        cycles = float(np.mean(verification.latency_cycles))
        rtl["model_latency_error"] = chosen.latency_cycles / cycles - 1
    rtl["latency_cycles"] = cycles
    rtl["latency_measured"] = verification is not None
    latency_s = cycles / (options.clock_mhz * 1e6)
    hardware = {"target": f"rtl:{device.name}", "schedule": "layer-synchronous", "clock_mhz": options.clock_mhz,
                "latency_s": latency_s, "fps": 1 / latency_s,
                "fps_pipelined": options.clock_mhz * 1e6 / chosen.interval_cycles}
    if options.synth:
        synthesis = synthesize(verilog_path, design.top, out / "synth", options.timeout_s)
        resources = synthesis.resources
        rtl["resources"] = resources.as_dict()
        rtl["utilization"] = resources.utilization(device)
        rtl["fits"] = not resources.fits(device)
        rtl["synthesis"] = {"wall_s": synthesis.wall_s, "log": synthesis.log, "yosys": synthesis.yosys_version}
        measured_points = [(resources.luts, latency_s * 1e6)]
        power = estimate_power(resources, device, options.clock_mhz,
                               verification.toggle_rate if verification is not None else None)
        rtl["power"] = power.as_dict()
        hardware["energy_j_per_frame"] = power.total_w * latency_s
        hardware["edp"] = hardware["energy_j_per_frame"] * latency_s
    plot_path = atomic_write_bytes(out / "pareto.png", pareto_plot(exploration, options.clock_mhz, chosen,
                                                                   measured_points))
    rtl["pareto_plot"] = str(plot_path)

    wall = time.perf_counter() - begin
    layers = accuracy["layers"] if accuracy else []
    totals = {key: sum(layer[key] for layer in layers) for key in ("events", "synops", "dense_macs")}
    totals["activity"] = totals["synops"] / totals["dense_macs"] if totals["dense_macs"] else 0.0
    report = {
        "command": "compile", "version": __version__, "input": "fashion-mnist test", "model": name,
        "encoding": "radix", "steps": plan.bits, "frames": verification.images if verification else 0,
        "wall_s": wall, "fps": hardware["fps"], "layers": layers, "totals": totals, "hardware": hardware, "rtl": rtl,
    }
    if accuracy is not None:
        report["accuracy"] = {key: value for key, value in accuracy.items() if key != "layers"}
    write_report(out, report)
    return report


def _write_testbench(folder: Path) -> None:
    """Copy the cocotb testbench and its simulation top next to the Verilog."""
    from importlib import resources

    folder.mkdir(parents=True, exist_ok=True)
    package = resources.files("spikestream.rtl")
    for source, target in (("_testbench.py", "testbench.py"), ("testbench_top.v", "testbench_top.v")):
        atomic_write_bytes(folder / target, (package / source).read_bytes())


