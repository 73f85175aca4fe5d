"""Streaming execution: Stream (frames in, outputs out, a Trace of the work; pipelined on two threads
when asked), simulate, backends."""

from spikestream.engine._backends import BACKENDS, make_backend, register_backend
from spikestream.engine._counting import LayerCount, LayerCounter, dense_macs
from spikestream.engine._executor import GraphExecutor, StepResult
from spikestream.engine._ops import DENSE_OPS
from spikestream.engine._pipeline import PLANNING_FRAMES, PROFILE_FRAMES, PipelinePlan
from spikestream.engine._radix import RadixExecutor, RadixResult, radix_bits
from spikestream.engine._stateful import STATEFUL
from spikestream.engine._stream import FrameShapeError, KeyframePolicy, Stream, as_frame, simulate
from spikestream.engine._trace import Trace, TraceFormatError

__all__ = [
    "BACKENDS",
    "DENSE_OPS",
    "PLANNING_FRAMES",
    "PROFILE_FRAMES",
    "STATEFUL",
    "FrameShapeError",
    "GraphExecutor",
    "KeyframePolicy",
    "LayerCount",
    "LayerCounter",
    "PipelinePlan",
    "RadixExecutor",
    "RadixResult",
    "StepResult",
    "Stream",
    "Trace",
    "TraceFormatError",
    "as_frame",
    "dense_macs",
    "make_backend",
    "radix_bits",
    "register_backend",
    "simulate",
]
