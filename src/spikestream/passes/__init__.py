"""Graph → graph transformations and named pipelines."""

from spikestream.passes._quantize import quantize
from spikestream.passes._registry import PASSES, register_pass, run_pipeline
from spikestream.passes._sigma_delta import to_sigma_delta
from spikestream.passes._threshold_balancing import relu_to_if, threshold_balancing

__all__ = ["PASSES", "quantize", "register_pass", "relu_to_if", "run_pipeline", "threshold_balancing", "to_sigma_delta"]
