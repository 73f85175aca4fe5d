"""Metrics: classification accuracy, segmentation mIoU, detection mAP (by pycocotools)."""

from spikestream.metrics._classification import accuracy
from spikestream.metrics._detection import FrameBoxes, mean_average_precision
from spikestream.metrics._errors import MetricInputError
from spikestream.metrics._segmentation import (
    ConfusionMatrix,
    binary_mean_iou,
    confusion_matrix,
    iou_per_class,
    mean_iou,
)

__all__ = [
    "ConfusionMatrix",
    "FrameBoxes",
    "MetricInputError",
    "accuracy",
    "binary_mean_iou",
    "confusion_matrix",
    "iou_per_class",
    "mean_average_precision",
    "mean_iou",
]
