"""Graph → graph transformations and named pipelines."""

from spikestream.passes._registry import PASSES, register_pass, run_pipeline
from spikestream.passes._sigma_delta import to_sigma_delta

__all__ = ["PASSES", "register_pass", "run_pipeline", "to_sigma_delta"]
