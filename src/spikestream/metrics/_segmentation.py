"""Segmentation quality from a confusion matrix: per-class IoU and its mean (mIoU).

IoU_c = TP_c / (TP_c + FP_c + FN_c), counted over *all* pixels of all frames (the confusion matrix
is accumulated first, then divided once, as in PASCAL VOC and Cityscapes). A class that appears in
neither the predictions nor the ground truth has no IoU (NaN) and is left out of the mean.
"""

from __future__ import annotations

import numpy as np

from spikestream.metrics._errors import MetricInputError


def confusion_matrix(predictions, targets, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts; entry [t, p] counts pixels of true class t predicted as class p."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    if predictions.shape != targets.shape:
        raise MetricInputError(f"predicted labels of shape {predictions.shape} do not match the ground "
                               f"truth of shape {targets.shape}")
    if num_classes < 1:
        raise MetricInputError(f"num_classes must be at least 1, not {num_classes}")
    predictions = predictions.astype(np.int64, copy=False).ravel()
    targets = targets.astype(np.int64, copy=False).ravel()
    for name, values in (("predicted", predictions), ("true", targets)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise MetricInputError(f"{name} labels must lie in [0, {num_classes - 1}], found "
                                   f"{values.min()}..{values.max()}")
    counts = np.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """(K,) float IoU per class from a confusion matrix; NaN where the class is absent everywhere."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positives = np.diag(confusion)  # (K,)
    union = confusion.sum(0) + confusion.sum(1) - true_positives  # predicted + true − both
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positives / union, np.nan)


def mean_iou(predictions, targets, num_classes: int) -> float:
    """Mean over classes of the per-class IoU (classes absent everywhere are left out)."""
    return _nanmean(iou_per_class(confusion_matrix(predictions, targets, num_classes)))


def binary_mean_iou(predicted_masks, true_masks) -> float:
    """mIoU of a foreground/background split: the mean of the background IoU and the foreground IoU."""
    return mean_iou(np.asarray(predicted_masks).astype(bool), np.asarray(true_masks).astype(bool), 2)


class ConfusionMatrix:
    """Accumulates a confusion matrix frame by frame, for streams too long to hold in memory."""

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)
        self.counts = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, predictions, targets) -> None:
        self.counts += confusion_matrix(predictions, targets, self.num_classes)

    def iou(self) -> np.ndarray:
        return iou_per_class(self.counts)

    def mean_iou(self) -> float:
        return _nanmean(self.iou())

    def pixel_accuracy(self) -> float:
        total = self.counts.sum()
        return float(np.trace(self.counts) / total) if total else float("nan")


def _nanmean(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else float("nan")
