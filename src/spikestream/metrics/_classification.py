"""Classification accuracy."""

from __future__ import annotations

import numpy as np

from spikestream.metrics._errors import MetricInputError


def accuracy(predictions, labels) -> float:
    """Fraction of samples whose predicted class equals the label.

    ``predictions`` are class indices shaped like ``labels``, or scores with one more trailing axis
    (the class axis), which are reduced by argmax first.
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.ndim == labels.ndim + 1:
        predictions = predictions.argmax(axis=-1)  # (..., K) scores -> (...) class indices
    if predictions.shape != labels.shape:
        raise MetricInputError(f"accuracy needs predictions shaped like the labels {labels.shape} "
                               f"(or with one more class axis), got {predictions.shape}")
    if labels.size == 0:
        raise MetricInputError("accuracy of an empty set is undefined: no labels were given")
    return float(np.mean(predictions == labels))
