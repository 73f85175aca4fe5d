"""Detection quality: COCO-style mean average precision, computed by pycocotools.

``mean_average_precision`` is a thin adapter: it turns per-frame boxes, scores and labels into the
COCO ground-truth and result dictionaries (bbox = [x, y, w, h] with w = x1 − x0, every frame one
image, category id = label + 1) and runs ``COCOeval`` for one IoU threshold. AP per class is
COCO's 101-point interpolated precision, averaged over the classes that have ground truth; all
object sizes count (area range "all"), and at most ``max_detections`` per frame and class are
kept, highest scores first. pycocotools prints its progress; that output is swallowed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from spikestream.metrics._errors import MetricInputError


class FrameBoxes(NamedTuple):
    """Boxes of one frame: ground truth (scores None) or detections (scores given)."""

    boxes: np.ndarray  # float (k, 4): x0, y0, x1, y1 in pixel edges (x1 − x0 is the width)
    labels: np.ndarray  # int (k,): class index
    scores: np.ndarray | None = None  # float (k,): confidence, higher first in ranking


def _checked(frame, what: str, index: int, scored: bool) -> FrameBoxes:
    boxes = np.asarray(frame[0], dtype=np.float64).reshape(-1, 4) if len(frame[0]) else np.zeros((0, 4))
    labels = np.asarray(frame[1], dtype=np.int64).reshape(-1)
    scores = np.asarray(frame[2], dtype=np.float64).reshape(-1) if scored else None
    if len(labels) != len(boxes) or (scored and len(scores) != len(boxes)):
        raise MetricInputError(f"{what} of frame {index}: {len(boxes)} boxes but {len(labels)} labels"
                               + (f" and {len(scores)} scores" if scored else ""))
    if np.any(boxes[:, 2:] < boxes[:, :2]):
        raise MetricInputError(f"{what} of frame {index}: boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
    return FrameBoxes(boxes, labels, scores)


def mean_average_precision(detections: Sequence, ground_truth: Sequence, iou_threshold: float = 0.5,
                           max_detections: int = 100) -> float:
    """mAP at one IoU threshold (default: mAP@0.5) over a sequence of frames, by ``COCOeval``.

    ``detections[i]`` and ``ground_truth[i]`` belong to frame i: ``(boxes, labels, scores)`` and
    ``(boxes, labels)`` (``FrameBoxes`` or plain tuples). Returns NaN when there is no ground-truth
    box at all (AP is undefined), and 0.0 when there is ground truth but nothing is detected.
    """
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(ground_truth):
        raise MetricInputError(f"got detections for {len(detections)} frames but ground truth for "
                               f"{len(ground_truth)}")
    if not 0 < iou_threshold < 1:
        raise MetricInputError(f"the IoU threshold must lie in (0, 1), not {iou_threshold}")
    truths = [_checked(frame, "ground truth", i, scored=False) for i, frame in enumerate(ground_truth)]
    found = [_checked(frame, "detections", i, scored=True) for i, frame in enumerate(detections)]
    if not any(len(t.labels) for t in truths):
        return float("nan")
    if not any(len(d.labels) for d in found):
        return 0.0

    classes = sorted({int(c) for frame in (*truths, *found) for c in frame.labels})
    images = [{"id": i + 1} for i in range(len(truths))]
    categories = [{"id": c + 1, "name": str(c)} for c in classes]
    truth_set = _coco(images, categories, _annotations(truths))
    result_set = _coco(images, categories, _annotations(found))
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(truth_set, result_set, iouType="bbox")
        evaluation.params.iouThrs = np.array([iou_threshold])
        evaluation.params.maxDets = [int(max_detections)]
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: (IoU thresholds, recall points, classes, area ranges, max-dets); area range 0 is "all".
    precision = evaluation.eval["precision"][0, :, :, 0, -1]  # (101, K)
    per_class = [precision[:, k].mean() for k in range(precision.shape[1]) if np.all(precision[:, k] > -1)]
    return float(np.mean(per_class)) if per_class else float("nan")


def _annotations(frames: list[FrameBoxes]) -> list[dict]:
    annotations = []
    for image, frame in enumerate(frames):
        for k, (box, label) in enumerate(zip(frame.boxes, frame.labels, strict=True)):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotation = {"id": len(annotations) + 1, "image_id": image + 1, "category_id": int(label) + 1,
                          "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
            if frame.scores is not None:
                annotation["score"] = float(frame.scores[k])
            annotations.append(annotation)
    return annotations


def _coco(images: list[dict], categories: list[dict], annotations: list[dict]):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        dataset = COCO()
        dataset.dataset = {"images": images, "categories": categories, "annotations": annotations}
        dataset.createIndex()
    return dataset
