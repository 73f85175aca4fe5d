"""IR node kinds: frozen, typed dataclasses holding numpy arrays and plain numbers.

Shapes are per sample, without batch or time dimensions: ``(C, H, W)`` for images, ``(F,)`` for
vectors. Every node checks its own parameters in ``__post_init__`` and derives its output shape
from its input shapes in ``infer_shape``. Parameter arrays are stored as read-only numpy arrays.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from spikestream.ir._errors import IRError

Shape = tuple[int, ...]

NODE_KINDS: dict[str, type[Node]] = {}


def register_node(cls: type[Node]) -> type[Node]:
    """Add a node class to the registry under its ``kind``; the registry is the one list of kinds."""
    if cls.kind in NODE_KINDS:
        raise ValueError(f"node kind {cls.kind!r} is registered twice")
    NODE_KINDS[cls.kind] = cls
    return cls


def _frozen_array(value, name: str, node: str) -> np.ndarray:
    array = np.array(value, dtype=np.float32, copy=True)
    if not np.all(np.isfinite(array)):
        raise IRError(f"{node}: {name} must be finite, got non-finite values")
    array.setflags(write=False)
    return array


def _pair(value, name: str, node: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < minimum for v in pair):
        raise IRError(f"{node}: {name} must be an int or a pair of ints >= {minimum}, not {value!r}")
    return int(pair[0]), int(pair[1])


def _fingerprint(array: np.ndarray) -> str:
    """Short content hash so the text form changes whenever the parameters change."""
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:8]


def broadcastable_to(param: np.ndarray, shape: Shape) -> bool:
    """Neuron parameters are a scalar, one value per channel ``(C,)``, or one per neuron (``shape``)."""
    return param.ndim == 0 or param.shape == tuple(shape) or (param.ndim == 1 and param.shape[0] == shape[0])


@dataclass(frozen=True, eq=False)
class Node:
    """Base class. ``arity`` is the number of inputs (None: two or more)."""

    name: str

    kind: ClassVar[str] = "Node"
    arity: ClassVar[int | None] = 1
    array_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise IRError(f"{self.kind}: name must be a non-empty string, not {self.name!r}")
        for field_name in self.array_fields:
            value = getattr(self, field_name)
            if value is not None:
                object.__setattr__(self, field_name, _frozen_array(value, field_name, self.name))
        self.check()

    def check(self) -> None:
        """Validate parameters; raise IRError naming the node and what was expected."""

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        return inputs[0]

    # --- plain-data views -------------------------------------------------------------------
    def params(self) -> dict:
        """Every field except the name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}

    def replace(self, **changes) -> Node:
        return dataclasses.replace(self, **changes)

    def equals(self, other: Node) -> bool:
        """Structural equality (arrays compared exactly)."""
        if type(self) is not type(other) or self.name != other.name:
            return False
        for key, value in self.params().items():
            theirs = getattr(other, key)
            if isinstance(value, np.ndarray) or isinstance(theirs, np.ndarray):
                if value is None or theirs is None:
                    return False
                if value.shape != theirs.shape or not np.array_equal(value, theirs):
                    return False
            elif value != theirs:
                return False
        return True

    def describe(self) -> str:
        parts = []
        for key, value in self.params().items():
            if isinstance(value, np.ndarray) and value.ndim == 0:
                parts.append(f"{key}={float(value):g}")
            elif isinstance(value, np.ndarray):
                dims = "x".join(map(str, value.shape))
                parts.append(f"{key}[{dims}]#{_fingerprint(value)}")
            elif value is not None:
                parts.append(f"{key}={value}")
        return f"{self.kind}({', '.join(parts)})"


def _require_rank(node: Node, shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise IRError(f"type mismatch: {node.name} ({node.kind}) expects {what}, got shape {shape}")


# --- graph boundary -----------------------------------------------------------------------------


@register_node
@dataclass(frozen=True, eq=False)
class Input(Node):
    shape: Shape = ()  # per-sample shape, e.g. (C, H, W)

    kind: ClassVar[str] = "Input"
    arity: ClassVar[int | None] = 0

    def check(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if not shape or any(s <= 0 for s in shape):
            raise IRError(f"{self.name}: Input shape must be non-empty positive ints, not {self.shape!r}")
        object.__setattr__(self, "shape", shape)

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        return self.shape


@register_node
@dataclass(frozen=True, eq=False)
class Output(Node):
    kind: ClassVar[str] = "Output"


# --- synaptic layers (they carry weights; the Trace counts their work) --------------------------


@dataclass(frozen=True, eq=False)
class SynapticNode(Node):
    """A node with weights. Its input events, synops and dense MACs are recorded in a Trace."""

    weight: np.ndarray  # see each subclass for the layout
    bias: np.ndarray | None = None

    array_fields: ClassVar[tuple[str, ...]] = ("weight", "bias")


@register_node
@dataclass(frozen=True, eq=False)
class Conv2d(SynapticNode):
    """y[o] = b[o] + Σ_i W[o, i] ⋆ x[i]; weight (C_out, C_in / groups, k_h, k_w)."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    kind: ClassVar[str] = "Conv2d"

    def check(self) -> None:
        object.__setattr__(self, "stride", _pair(self.stride, "stride", self.name, 1))
        object.__setattr__(self, "padding", _pair(self.padding, "padding", self.name, 0))
        object.__setattr__(self, "dilation", _pair(self.dilation, "dilation", self.name, 1))
        if self.weight.ndim != 4:
            raise IRError(f"{self.name}: Conv2d weight must be (C_out, C_in/groups, k_h, k_w), "
                          f"not shape {self.weight.shape}")
        if int(self.groups) < 1 or self.weight.shape[0] % int(self.groups):
            raise IRError(f"{self.name}: groups={self.groups} must divide C_out={self.weight.shape[0]}")
        object.__setattr__(self, "groups", int(self.groups))
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            raise IRError(f"{self.name}: bias must have shape ({self.weight.shape[0]},), not {self.bias.shape}")

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        _require_rank(self, inputs[0], 3, "(C, H, W)")
        channels, height, width = inputs[0]
        if channels != self.weight.shape[1] * self.groups:
            raise IRError(f"type mismatch: {self.name} (Conv2d) expects {self.weight.shape[1] * self.groups} "
                          f"input channels, got shape {inputs[0]}")
        out = []
        for size, k, s, p, d in zip((height, width), self.kernel_size, self.stride, self.padding,
                                    self.dilation, strict=True):
            n = (size + 2 * p - d * (k - 1) - 1) // s + 1
            if n <= 0:
                raise IRError(f"{self.name}: input {inputs[0]} is too small for kernel {self.kernel_size}")
            out.append(n)
        return (self.weight.shape[0], *out)


@register_node
@dataclass(frozen=True, eq=False)
class ConvTranspose2d(SynapticNode):
    """Transposed convolution; weight (C_in, C_out / groups, k_h, k_w) as in PyTorch."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    kind: ClassVar[str] = "ConvTranspose2d"

    def check(self) -> None:
        object.__setattr__(self, "stride", _pair(self.stride, "stride", self.name, 1))
        object.__setattr__(self, "padding", _pair(self.padding, "padding", self.name, 0))
        object.__setattr__(self, "output_padding", _pair(self.output_padding, "output_padding", self.name, 0))
        object.__setattr__(self, "dilation", _pair(self.dilation, "dilation", self.name, 1))
        if self.weight.ndim != 4:
            raise IRError(f"{self.name}: ConvTranspose2d weight must be (C_in, C_out/groups, k_h, k_w), "
                          f"not shape {self.weight.shape}")
        if int(self.groups) < 1 or self.weight.shape[0] % int(self.groups):
            raise IRError(f"{self.name}: groups={self.groups} must divide C_in={self.weight.shape[0]}")
        object.__setattr__(self, "groups", int(self.groups))
        out_channels = self.weight.shape[1] * self.groups
        if self.bias is not None and self.bias.shape != (out_channels,):
            raise IRError(f"{self.name}: bias must have shape ({out_channels},), not {self.bias.shape}")

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        _require_rank(self, inputs[0], 3, "(C, H, W)")
        if inputs[0][0] != self.weight.shape[0]:
            raise IRError(f"type mismatch: {self.name} (ConvTranspose2d) expects {self.weight.shape[0]} "
                          f"input channels, got shape {inputs[0]}")
        out = [
            (size - 1) * s - 2 * p + d * (k - 1) + op + 1
            for size, k, s, p, op, d in zip(inputs[0][1:], self.kernel_size, self.stride, self.padding,
                                            self.output_padding, self.dilation, strict=True)
        ]
        return (self.weight.shape[1] * self.groups, *out)


@register_node
@dataclass(frozen=True, eq=False)
class Linear(SynapticNode):
    """y = W x + b; weight (out_features, in_features)."""

    kind: ClassVar[str] = "Linear"

    def check(self) -> None:
        if self.weight.ndim != 2:
            raise IRError(f"{self.name}: Linear weight must be (out, in), not shape {self.weight.shape}")
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            raise IRError(f"{self.name}: bias must have shape ({self.weight.shape[0]},), not {self.bias.shape}")

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        if inputs[0] != (self.weight.shape[1],):
            raise IRError(f"type mismatch: {self.name} (Linear) expects ({self.weight.shape[1]},), "
                          f"got shape {inputs[0]}")
        return (self.weight.shape[0],)


# --- pooling and reshaping ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Pool2d(Node):
    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None  # None: equal to kernel_size
    padding: tuple[int, int] = (0, 0)

    def check(self) -> None:
        object.__setattr__(self, "kernel_size", _pair(self.kernel_size, "kernel_size", self.name, 1))
        stride = self.kernel_size if self.stride is None else self.stride
        object.__setattr__(self, "stride", _pair(stride, "stride", self.name, 1))
        object.__setattr__(self, "padding", _pair(self.padding, "padding", self.name, 0))

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        _require_rank(self, inputs[0], 3, "(C, H, W)")
        out = [(size + 2 * p - k) // s + 1
               for size, k, s, p in zip(inputs[0][1:], self.kernel_size, self.stride, self.padding, strict=True)]
        if min(out) <= 0:
            raise IRError(f"{self.name}: input {inputs[0]} is too small for kernel {self.kernel_size}")
        return (inputs[0][0], *out)


@register_node
@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """Mean over each window (zero padding counted, as PyTorch's default count_include_pad=True)."""

    kind: ClassVar[str] = "AvgPool2d"


@register_node
@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """Sum over each window (NIR's SumPool2d)."""

    kind: ClassVar[str] = "SumPool2d"


@register_node
@dataclass(frozen=True, eq=False)
class MaxPool2d(_Pool2d):
    kind: ClassVar[str] = "MaxPool2d"


@register_node
@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Merge per-sample dims ``start_dim..end_dim`` (inclusive) into one."""

    start_dim: int = 0
    end_dim: int = -1

    kind: ClassVar[str] = "Flatten"

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        start, end = self.start_dim % len(shape), self.end_dim % len(shape)
        if start > end:
            raise IRError(f"{self.name}: start_dim {self.start_dim} is after end_dim {self.end_dim} "
                          f"for shape {shape}")
        return (*shape[:start], int(np.prod(shape[start:end + 1])), *shape[end + 1:])


@register_node
@dataclass(frozen=True, eq=False)
class Upsample(Node):
    """Integer-factor upsampling of (C, H, W)."""

    scale_factor: tuple[int, int] = (2, 2)
    mode: str = "nearest"  # "nearest" or "bilinear" (align_corners=False)

    kind: ClassVar[str] = "Upsample"

    def check(self) -> None:
        object.__setattr__(self, "scale_factor", _pair(self.scale_factor, "scale_factor", self.name, 1))
        if self.mode not in ("nearest", "bilinear"):
            raise IRError(f"{self.name}: Upsample mode must be 'nearest' or 'bilinear', not {self.mode!r}")

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        _require_rank(self, inputs[0], 3, "(C, H, W)")
        c, h, w = inputs[0]
        return (c, h * self.scale_factor[0], w * self.scale_factor[1])


# --- element-wise and joins -----------------------------------------------------------------------


@register_node
@dataclass(frozen=True, eq=False)
class Add(Node):
    kind: ClassVar[str] = "Add"
    arity: ClassVar[int | None] = None

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        if len(set(inputs)) != 1:
            raise IRError(f"type mismatch: {self.name} (Add) needs equal shapes, got {inputs}")
        return inputs[0]


@register_node
@dataclass(frozen=True, eq=False)
class Concat(Node):
    axis: int = 0  # per-sample axis (0 = channels)

    kind: ClassVar[str] = "Concat"
    arity: ClassVar[int | None] = None

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        rank = len(inputs[0])
        axis = self.axis % rank
        rest = {tuple(s[:axis] + s[axis + 1:]) for s in inputs}
        if any(len(s) != rank for s in inputs) or len(rest) != 1:
            raise IRError(f"type mismatch: {self.name} (Concat axis={self.axis}) got {inputs}")
        return (*inputs[0][:axis], sum(s[axis] for s in inputs), *inputs[0][axis + 1:])


@register_node
@dataclass(frozen=True, eq=False)
class ReLU(Node):
    kind: ClassVar[str] = "ReLU"


MAX_REQUANTIZE_BITS = 24  # activations are held in float32 by the dense engine, exact up to 2^24


@register_node
@dataclass(frozen=True, eq=False)
class Requantize(Node):
    """Fixed-point activation of a quantized (radix) network, element-wise on integer accumulators:
    y = min(⌊(max(S, 0) + 2^(k−1)) / 2^k⌋, 2^T − 1) — ReLU, right shift by k with round-half-up,
    clip to T bits (``neurons.requantize``). Its output is the next layer's T-bit radix input."""

    shift: int = 0  # k, power-of-two right shift (accumulator scale -> activation scale)
    bits: int = 8  # T, bits of the output activation (= radix time steps)

    kind: ClassVar[str] = "Requantize"

    def check(self) -> None:
        for field_name, value, low, high in (("shift", self.shift, 0, 62), ("bits", self.bits, 1, MAX_REQUANTIZE_BITS)):
            if isinstance(value, bool) or int(value) != value or not low <= value <= high:
                raise IRError(f"{self.name}: Requantize {field_name} must be an integer from {low} to {high}, "
                              f"not {value!r}")
            object.__setattr__(self, field_name, int(value))


# --- stateful neurons -------------------------------------------------------------------------------

RESET_MODES = ("zero", "subtract")


@dataclass(frozen=True, eq=False)
class NeuronNode(Node):
    """A node with state that persists across time steps (and, in a Stream, across frames)."""

    def _check_params(self, shape: Shape) -> None:
        for name in self.array_fields:
            value = getattr(self, name)
            if value is not None and not broadcastable_to(value, shape):
                raise IRError(f"{self.name}: {name} of shape {value.shape} fits neither a scalar, "
                              f"per-channel ({shape[0]},) nor per-neuron {shape}")

    def _check_reset(self) -> None:
        if getattr(self, "reset", "zero") not in RESET_MODES:
            raise IRError(f"{self.name}: reset must be one of {RESET_MODES}, not {self.reset!r}")

    def infer_shape(self, inputs: list[Shape]) -> Shape:
        self._check_params(inputs[0])
        return inputs[0]


@register_node
@dataclass(frozen=True, eq=False)
class IF(NeuronNode):
    """Integrate-and-fire: v ← v + r·I; spike s = [v ≥ θ]; then reset (to v_reset, or v ← v − θ).
    ``r`` is the per-step gain, NIR's IF resistance times dt (see ``ir._time``)."""

    threshold: np.ndarray = 1.0  # θ, firing threshold
    r: np.ndarray = 1.0  # per-step input gain, dt × NIR's r
    v_reset: np.ndarray = 0.0  # potential after a spike when reset == "zero"
    reset: str = "zero"  # "zero" (to v_reset) or "subtract" (v ← v − θ)

    kind: ClassVar[str] = "IF"
    array_fields: ClassVar[tuple[str, ...]] = ("threshold", "r", "v_reset")

    def check(self) -> None:
        self._check_reset()


@register_node
@dataclass(frozen=True, eq=False)
class LIF(NeuronNode):
    """Leaky integrate-and-fire, NIR parameters, discretised by forward Euler with the graph's dt:
    v ← v + (dt/τ)·(v_leak − v + r·I); s = [v ≥ θ]; reset as IF."""

    tau: np.ndarray = 1e-3  # membrane time constant τ, seconds
    threshold: np.ndarray = 1.0  # θ
    r: np.ndarray = 1.0  # input resistance
    v_leak: np.ndarray = 0.0  # resting potential
    v_reset: np.ndarray = 0.0
    reset: str = "zero"

    kind: ClassVar[str] = "LIF"
    array_fields: ClassVar[tuple[str, ...]] = ("tau", "threshold", "r", "v_leak", "v_reset")

    def check(self) -> None:
        self._check_reset()
        if np.any(self.tau <= 0):
            raise IRError(f"{self.name}: tau must be positive seconds")


@register_node
@dataclass(frozen=True, eq=False)
class CubaLIF(NeuronNode):
    """Current-based LIF (NIR CubaLIF): i ← i + (dt/τ_syn)·(−i + w_in·I);
    v ← v + (dt/τ_mem)·(v_leak − v + r·i); s = [v ≥ θ]; reset as IF."""

    tau_syn: np.ndarray = 1e-3  # synaptic current time constant, seconds
    tau_mem: np.ndarray = 1e-3  # membrane time constant, seconds
    threshold: np.ndarray = 1.0
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    v_reset: np.ndarray = 0.0
    w_in: np.ndarray = 1.0  # input weight into the synaptic current
    reset: str = "zero"

    kind: ClassVar[str] = "CubaLIF"
    array_fields: ClassVar[tuple[str, ...]] = ("tau_syn", "tau_mem", "threshold", "r", "v_leak", "v_reset", "w_in")

    def check(self) -> None:
        self._check_reset()
        if np.any(self.tau_syn <= 0) or np.any(self.tau_mem <= 0):
            raise IRError(f"{self.name}: tau_syn and tau_mem must be positive seconds")


@register_node
@dataclass(frozen=True, eq=False)
class SigmaDelta(NeuronNode):
    """Send-on-delta against the reconstruction (DESIGN.md §4):
    Δ = a − â; y = Δ if |Δ| ≥ θ else 0; â ← â + y. The wire carries y (the events); the node's
    value, as seen by the receiver that accumulates it, is â."""

    threshold: np.ndarray = 0.0  # θ, per layer (scalar) or per channel (C,)

    kind: ClassVar[str] = "SigmaDelta"
    array_fields: ClassVar[tuple[str, ...]] = ("threshold",)

    def check(self) -> None:
        if np.any(self.threshold < 0):
            raise IRError(f"{self.name}: SigmaDelta threshold must be >= 0")


SYNAPTIC_KINDS = tuple(k for k, c in NODE_KINDS.items() if issubclass(c, SynapticNode))
NEURON_KINDS = tuple(k for k, c in NODE_KINDS.items() if issubclass(c, NeuronNode))
