"""Errors of the metrics package."""

from spikestream.errors import InputError


class MetricInputError(InputError):
    """Predictions and ground truth that do not fit together (shapes, class ranges, box layout)."""
