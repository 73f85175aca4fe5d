"""Masked detection on synthetic clips, and its cost on the hardware models with the mask generator included.

``evaluate_masked_detection`` streams held-out clips through det-synth as a sigma-delta network (a fresh
state per clip, one Trace over all clips) under a region mask and scores mAP@0.5 with pycocotools.
``masked_hardware_cost`` prices the detector's Trace and, where the mask has one, MGNet's Trace on the
neuromorphic (Loihi-like) and FPGA PE-array models, composed by ``with_mask_generator``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from spikestream import ir
from spikestream.masking._policy import MaskConfig, make_masking

NEUROMORPHIC = {"chip": "loihi2", "chips": 1}  # the neuromorphic target of every masking figure
FPGA = {"device": "XC7Z035", "processing_elements": 16}  # and the FPGA PE array (KWBS schedule)
KEYFRAME_EVERY = 8  # keyframes marked in the detector's trace (the FPGA's KWBS profiles there)


def evaluate_masked_detection(graph: ir.Graph, clips: Sequence, config: MaskConfig, *, mgnet=None,
                              heatmap: np.ndarray | None = None, tile: tuple[int, int] = (8, 8)) -> dict:
    """mAP@0.5, per-frame costs and the Traces of ``graph`` (a det-synth sigma-delta graph) over ``clips``
    under the mask ``config``; ``mgnet``/``heatmap`` override the shipped MGNet and the training heatmap."""
    from spikestream.engine import KeyframePolicy, Stream
    from spikestream.hw import attach_geometry
    from spikestream.metrics import FrameBoxes, mean_average_precision
    from spikestream.models.synthetic_tasks import decode_detections

    masking = make_masking(config, graph.input_shape[-2:], decode_detections, mgnet, heatmap)
    stream = Stream(graph, "sigma-delta", mask=masking, keyframe=KeyframePolicy(KEYFRAME_EVERY), tile=tile)
    detections, truth = [], []  # per clip, per frame
    start = time.perf_counter()
    for clip in clips:
        stream.reset()
        if masking is not None:
            masking.reset()
        detections.append([])
        truth.append([FrameBoxes(boxes, labels) for boxes, labels in zip(clip.boxes, clip.labels, strict=True)])
        for frame in clip.frames:
            output = stream.process(frame)
            if masking is not None:
                masking.observe(output)
            detections[-1].append(decode_detections(output))
    wall_s = time.perf_counter() - start
    attach_geometry(stream.trace, graph)
    generator = None if masking is None else masking.trace
    frames = stream.trace.frames
    detector = stream.trace.totals()
    generator_synops = generator.totals()["synops"] / frames if generator is not None else 0.0
    return {
        "mask": config.kind, "keep": config.keep, "nominal_masked_fraction": config.masked,
        "masked_fraction": masking.masked_fraction if masking is not None else 0.0,
        "map50": mean_average_precision([d for c in detections for d in c], [t for c in truth for t in c], 0.5),
        "frames": frames,
        "input_events_per_frame": float(stream.trace.events[:, 0].mean()),
        "detector_synops_per_frame": detector["synops"] / frames,
        "mask_generator_synops_per_frame": generator_synops,
        "total_synops_per_frame": detector["synops"] / frames + generator_synops,
        "dense_macs_per_frame": detector["dense_macs"] / frames,
        "wall_s": wall_s,
        "trace": stream.trace, "mask_generator_trace": generator, "masking": masking,
        "detections": detections, "truth": truth,  # per clip, per frame: for paired resampling over clips
    }


def with_mask_generator(detector, generator) -> dict:
    """Cost per frame of the detector with the mask generator in front, from the two HardwareResults.

    Latencies add (the mask must exist before the frame's deltas are gated). On the neuromorphic target
    both networks sit on the same chip and run as pipeline stages, like the layers of one network: the frame
    period is the slower of the two, dynamic energies add and the chip's static power is paid once, over
    that period. On a PE array (FPGA) they share the processing elements, so their frame times add.
    """
    latency = detector.latency_s + generator.latency_s
    detector_frame, generator_frame = 1.0 / detector.fps, 1.0 / generator.fps
    if detector.target == "neuromorphic":
        static_power_w = detector.energy_breakdown["static"] / detector_frame
        frame = max(detector_frame, generator_frame)
        dynamic = sum(v for k, v in detector.energy_breakdown.items() if k != "static") + sum(
            v for k, v in generator.energy_breakdown.items() if k != "static")
        energy = dynamic + static_power_w * frame
    else:
        frame = detector_frame + generator_frame
        energy = detector.energy_j_per_frame + generator.energy_j_per_frame
    return {"energy_j_per_frame": energy, "latency_s": latency, "edp": energy * latency, "fps": 1.0 / frame}


def masked_hardware_cost(trace, generator_trace=None) -> dict:
    """Neuromorphic energy/frame, latency, EDP and FPGA frames/s of the detector's trace, with the mask
    generator's trace (if any) added as ``with_mask_generator`` composes them."""
    from spikestream import hw

    loihi = hw.simulate(trace, "neuromorphic", **NEUROMORPHIC)
    fpga = hw.simulate(trace, "fpga", "kwbs", **FPGA)
    result = {"detector": {"energy_j_per_frame": loihi.energy_j_per_frame, "latency_s": loihi.latency_s,
                           "edp": loihi.edp, "fpga_fps": fpga.fps,
                           "energy_breakdown_j_per_frame": loihi.energy_breakdown},
              "energy_j_per_frame": loihi.energy_j_per_frame, "latency_s": loihi.latency_s, "edp": loihi.edp,
              "fpga_fps": fpga.fps}
    if generator_trace is not None:
        loihi_generator = hw.simulate(generator_trace, "neuromorphic", **NEUROMORPHIC)
        fpga_generator = hw.simulate(generator_trace, "fpga", "kwbs", **FPGA)
        combined = with_mask_generator(loihi, loihi_generator)
        result["mask_generator"] = {
            "energy_j_per_frame": combined["energy_j_per_frame"] - loihi.energy_j_per_frame,  # what it adds
            "latency_s": loihi_generator.latency_s, "fpga_fps": fpga_generator.fps}
        result.update({"energy_j_per_frame": combined["energy_j_per_frame"], "latency_s": combined["latency_s"],
                       "edp": combined["edp"], "fpga_fps": with_mask_generator(fpga, fpga_generator)["fps"]})
    return result
