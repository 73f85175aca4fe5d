"""Metrics against oracles: mIoU against a brute-force pixel count, mAP@0.5 (pycocotools) against
hand-computed cases, accuracy against its definition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.metrics import (
    ConfusionMatrix,
    FrameBoxes,
    MetricInputError,
    accuracy,
    binary_mean_iou,
    confusion_matrix,
    iou_per_class,
    mean_average_precision,
    mean_iou,
)

# COCO interpolates precision at 101 recall points 0, 0.01, ..., 1: a detector that is perfectly
# precise up to recall r and finds nothing more scores (number of points <= r) / 101.
HALF_RECALL_AP = 51 / 101


# --- accuracy -----------------------------------------------------------------------------------


def test_accuracy_from_labels_and_from_scores():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])  # argmax: 0, 1, 0
    assert accuracy(scores, [0, 1, 1]) == pytest.approx(2 / 3)
    with pytest.raises(MetricInputError, match="shaped like the labels"):
        accuracy([0, 1], [0, 1, 2])


# --- mIoU ---------------------------------------------------------------------------------------


def brute_force_miou(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> float:
    """Per class, count |P ∩ T| and |P ∪ T| pixel by pixel; average over classes seen anywhere."""
    ious = []
    for c in range(num_classes):
        intersection = union = 0
        for p, t in zip(predicted.ravel().tolist(), true.ravel().tolist(), strict=True):
            intersection += p == c and t == c
            union += p == c or t == c
        if union:
            ious.append(intersection / union)
    return sum(ious) / len(ious)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_mean_iou_equals_brute_force_count(num_classes, seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(num_classes, size=(3, 7, 9))
    predicted = np.where(rng.random(true.shape) < 0.6, true, rng.integers(num_classes, size=true.shape))
    assert mean_iou(predicted, true, num_classes) == pytest.approx(brute_force_miou(predicted, true, num_classes))


def test_hand_computed_binary_iou_and_absent_classes():
    true = np.array([[1, 1, 0, 0]], dtype=bool)
    predicted = np.array([[1, 0, 0, 0]], dtype=bool)
    # foreground: 1 / 2; background: 2 / 3
    assert binary_mean_iou(predicted, true) == pytest.approx((1 / 2 + 2 / 3) / 2)
    ious = iou_per_class(confusion_matrix([0, 0, 2], [0, 0, 2], num_classes=4))
    assert ious[0] == 1 and ious[2] == 1 and np.isnan(ious[1]) and np.isnan(ious[3])
    assert mean_iou([0, 0, 2], [0, 0, 2], 4) == 1.0


def test_confusion_matrix_layout_and_accumulation():
    counts = confusion_matrix([0, 1, 1, 2], [0, 0, 1, 2], num_classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]  # [true, predicted]
    accumulator = ConfusionMatrix(3)
    accumulator.update([0, 1], [0, 0])
    accumulator.update([1, 2], [1, 2])
    assert np.array_equal(accumulator.counts, counts)
    assert accumulator.mean_iou() == mean_iou([0, 1, 1, 2], [0, 0, 1, 2], 3)
    assert accumulator.pixel_accuracy() == 0.75
    with pytest.raises(MetricInputError, match=r"lie in \[0, 2\]"):
        confusion_matrix([0, 3], [0, 1], num_classes=3)


# --- mAP@0.5 ------------------------------------------------------------------------------------

TRUTH = [
    FrameBoxes(np.array([[10, 10, 20, 20], [30, 5, 42, 15]], np.float32), np.array([0, 1])),
    FrameBoxes(np.array([[0, 0, 8, 8]], np.float32), np.array([0])),
]


def detections_from(truth: list[FrameBoxes], keep=None, shift: float = 0.0) -> list[FrameBoxes]:
    frames = []
    for i, frame in enumerate(truth):
        index = np.arange(len(frame.labels)) if keep is None else np.asarray(keep[i], dtype=np.int64)
        frames.append(FrameBoxes(frame.boxes[index] + shift, frame.labels[index], np.full(len(index), 0.9)))
    return frames


def test_perfect_detections_score_one():
    assert mean_average_precision(detections_from(TRUTH), TRUTH) == pytest.approx(1.0)


def test_one_of_two_boxes_missed_scores_half_recall_ap():
    truth = [FrameBoxes(np.array([[10, 10, 20, 20], [40, 40, 50, 50]], np.float32), np.array([0, 0]))]
    found = [FrameBoxes(np.array([[10, 10, 20, 20]], np.float32), np.array([0]), np.array([0.8]))]
    assert mean_average_precision(found, truth) == pytest.approx(HALF_RECALL_AP)


def test_classes_are_averaged_and_iou_threshold_applies():
    # class 0: 2 of 2 found; class 1: 0 of 1 found -> mean of 1 and 0
    found = detections_from(TRUTH, keep=[[0], [0]])
    assert mean_average_precision(found, TRUTH) == pytest.approx(0.5)
    # a 10x10 box shifted by 2 px in x and y: IoU = 64 / 136 ≈ 0.47 < 0.5, a miss; ≥ 0.4 passes
    truth = [FrameBoxes(np.array([[0, 0, 10, 10]], np.float32), np.array([0]))]
    shifted = detections_from(truth, shift=2.0)
    assert mean_average_precision(shifted, truth) == 0.0
    assert mean_average_precision(shifted, truth, iou_threshold=0.4) == pytest.approx(1.0)


def test_a_false_positive_ranked_first_lowers_precision():
    truth = [FrameBoxes(np.array([[0, 0, 10, 10]], np.float32), np.array([0]))]
    found = [FrameBoxes(np.array([[0, 0, 10, 10], [30, 30, 40, 40]], np.float32), np.array([0, 0]),
                        np.array([0.5, 0.9]))]
    # ranked: false positive, then the hit -> precision 1/2 at recall 1, for all 101 points
    assert mean_average_precision(found, truth) == pytest.approx(0.5)


def test_edge_cases_and_errors():
    empty = [FrameBoxes(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0))] * 2
    assert mean_average_precision(empty, TRUTH) == 0.0
    assert np.isnan(mean_average_precision(empty, [FrameBoxes(np.zeros((0, 4)), np.zeros(0, np.int64))] * 2))
    with pytest.raises(MetricInputError, match="for 1 frames but ground truth for 2"):
        mean_average_precision(empty[:1], TRUTH)
    with pytest.raises(MetricInputError, match="x1 >= x0"):
        mean_average_precision([([[5, 0, 1, 1]], [0], [1.0])], [([[0, 0, 1, 1]], [0])])


def test_pycocotools_prints_nothing(capsys):
    mean_average_precision(detections_from(TRUTH), TRUTH)
    assert capsys.readouterr().out == ""
