"""Region masking for sigma-delta video networks: hold the input delta events of unimportant regions.

A frame is cut into r x r regions; a mask keeps a share ``keep`` of them and holds the rest. Held
pixels send nothing and keep their residual, so their accumulated change goes out once when they pass
again. Sources of the mask: a static heatmap of training-set boxes, MGNet (a small learned network on
the downsampled current frame), the previous frame's detections, and the union static ∪ MGNet.

>>> masking = make_masking(MaskConfig("union", keep=0.4), (64, 64), decode_detections)
>>> stream = Stream(graph, "sigma-delta", mask=masking)
>>> for frame in frames: masking.observe(stream.process(frame))
>>> masking.masked_fraction, masking.trace.totals()   # MGNet's own operations
"""

from spikestream.masking._evaluate import evaluate_masked_detection, masked_hardware_cost, with_mask_generator
from spikestream.masking._mgnet import (
    CELL,
    MGNET_RECIPE,
    MGNet,
    MGNetRecipe,
    cell_targets,
    load_mgnet,
    region_recall,
    train_mgnet,
)
from spikestream.masking._overlay import mask_overlay
from spikestream.masking._policy import (
    MASK_KINDS,
    MaskConfig,
    MaskContext,
    RegionMasking,
    make_masking,
    mask_generator_cost,
    mask_kind,
)
from spikestream.masking._regions import MaskError, RegionGrid, check_keep
from spikestream.masking._report import (
    detection_decoder,
    generator_hardware,
    masking_for_run,
    overlay_image,
    report_images,
)
from spikestream.masking._sources import (
    MGNetMask,
    PreviousDetectionsMask,
    RankedSource,
    RegionSource,
    StaticMask,
    UnionMask,
    box_heatmap,
    training_heatmap,
)

__all__ = [
    "CELL",
    "MASK_KINDS",
    "MGNET_RECIPE",
    "MGNet",
    "MGNetMask",
    "MGNetRecipe",
    "MaskConfig",
    "MaskContext",
    "MaskError",
    "PreviousDetectionsMask",
    "RankedSource",
    "RegionGrid",
    "RegionMasking",
    "RegionSource",
    "StaticMask",
    "UnionMask",
    "box_heatmap",
    "cell_targets",
    "check_keep",
    "detection_decoder",
    "evaluate_masked_detection",
    "generator_hardware",
    "load_mgnet",
    "make_masking",
    "mask_generator_cost",
    "mask_kind",
    "mask_overlay",
    "masked_hardware_cost",
    "masking_for_run",
    "overlay_image",
    "region_recall",
    "report_images",
    "train_mgnet",
    "training_heatmap",
    "with_mask_generator",
]
