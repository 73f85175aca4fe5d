"""Masking in ``spikestream run``: build the mask for a model, price the mask generator, draw the overlay."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from spikestream import ir
from spikestream.masking._overlay import mask_overlay
from spikestream.masking._policy import MaskConfig, RegionMasking, make_masking
from spikestream.masking._regions import MaskError

OVERLAY_FRAMES = 4  # frames shown side by side in the report
OVERLAY_SCALE = 4  # pixels per model-input pixel in the overlay


def detection_decoder(model: str) -> Callable[[np.ndarray], object] | None:
    """Output -> FrameBoxes for the zoo's detection models (the previous-detections mask needs it)."""
    if model == "det-synth":
        from spikestream.models.synthetic_tasks import decode_detections

        return decode_detections
    return None


def masking_for_run(config: MaskConfig | None, graph: ir.Graph, model: str) -> RegionMasking | None:
    """The mask of ``spikestream run --mask``, or None without one."""
    if config is None:
        return None
    if len(graph.input_shape) != 3:
        raise MaskError(f"region masks gate frames, but model {model!r} takes inputs of shape {graph.input_shape}")
    return make_masking(config, graph.input_shape[-2:], detection_decoder(model))


def generator_hardware(masking: RegionMasking, hardware, detector) -> dict | None:
    """With MGNet in the mask: its own cost on the run's hardware target (``detector``: the detector's
    HardwareResult there) and the detector + MGNet total (``with_mask_generator``)."""
    trace = masking.trace
    if trace is None or hardware is None:
        return None
    from spikestream.hw import simulate
    from spikestream.masking._evaluate import with_mask_generator

    result = simulate(trace, hardware.target, hardware.schedule, hardware.schedule_options(),
                      **hardware.target_options())
    return {"mask_generator_hardware": {"energy_j_per_frame": result.energy_j_per_frame,
                                        "latency_s": result.latency_s, "fps": result.fps},
            "with_mask_generator": with_mask_generator(detector, result)}


def overlay_image(masking: RegionMasking, frames: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                  decode: Callable[[np.ndarray], object] | None = None, first_frame: int = 0,
                  count: int = OVERLAY_FRAMES) -> tuple[np.ndarray, list[int]]:
    """RGB strip of ``count`` frames (evenly spread over the masked ones) with their region masks, and
    the detections when ``decode`` is given; -> (image, the frame indices shown)."""
    history = masking.history[-len(frames):]  # the run's frames (one clip)
    masked = [i for i, regions in enumerate(history) if not regions.all()] or list(range(len(history)))
    chosen = [masked[round(j)] for j in np.linspace(0, len(masked) - 1, min(count, len(masked)))]
    panels = []
    for index in chosen:
        boxes = None
        if decode is not None:
            found = decode(outputs[index])
            boxes = found.boxes[found.scores >= 0.3]
        panel = mask_overlay(frames[index], history[index], masking.grid, OVERLAY_SCALE, boxes)
        panels.append(np.pad(panel, ((0, 0), (0, 6), (0, 0)), constant_values=255))
    return np.concatenate(panels, axis=1)[:, :-6], [first_frame + i for i in chosen]


def report_images(masking: RegionMasking, frames: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                  decode: Callable[[np.ndarray], object] | None, input_name: str) -> list:
    """The HTML report's image of the mask over the run's frames."""
    from spikestream.report import ReportImage, png_from_array

    image, shown = overlay_image(masking, frames, outputs, decode)
    summary = masking.summary()
    caption = (f"{summary['kind']} mask ({summary['source']}), keep {summary['keep']:.2f} of {masking.grid.count} "
               f"regions of {masking.grid.size} px; {summary['masked_fraction'] * 100:.1f}% of the regions held "
               f"over the run (frame 0 passes whole). Clear: regions that send their deltas (amber outline); "
               f"tinted: held regions, whose change waits in the input layer's residual"
               + ("; green: detections scoring at least 0.3." if decode is not None else "."))
    return [ReportImage(f"Region mask on {input_name}, frames {', '.join(map(str, shown))}", caption,
                        png_from_array(image))]
