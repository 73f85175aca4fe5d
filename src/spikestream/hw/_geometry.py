"""The shape of every synaptic layer, as hardware models need it, stored inside the Trace.

A Trace counts work but not the network's geometry (weights, neurons, kernel, stride). Hardware
models need both, so ``attach_geometry(trace, graph)`` records one ``LayerGeometry`` per synaptic
layer in ``trace.metadata["geometry"]`` (saved with the trace), and ``trace_geometry(trace)`` reads
it back. A trace saved without it still loads: the geometry is then estimated from the trace's own
arrays (output channels, input channels, tile grid, dense MACs) and marked ``exact=False``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from spikestream import ir
from spikestream.errors import InputError

GEOMETRY_KEY = "geometry"
# Encodings whose input events are binary spikes (the others send graded, signed values).
BINARY_ENCODINGS = frozenset({"rate", "radix", "latency"})
# Nodes that pass binary spikes through unchanged (max of spikes, copies, reshapes).
_BINARY_PASSTHROUGH = frozenset({"MaxPool2d", "Flatten", "Concat", "Output"})


class GeometryError(InputError):
    """A trace whose geometry cannot serve a hardware model."""


@dataclass(frozen=True)
class LayerGeometry:
    """One synaptic layer: shapes, kernel, weights and whether its input events are graded."""

    name: str
    kind: str  # Conv2d, ConvTranspose2d or Linear
    input_shape: tuple[int, ...]  # (C, H, W) or (F,)
    output_shape: tuple[int, ...]  # (C, H, W) or (F,)
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    weights: int = 0  # stored weights
    nonzero_weights: int = 0
    graded_input: bool = True  # input events carry values (a synop is a MAC) rather than binary spikes
    exact: bool = True  # False: estimated from a trace saved without geometry

    @property
    def output_channels(self) -> int:
        return int(self.output_shape[0])

    @property
    def input_channels(self) -> int:
        return int(self.input_shape[0])

    @property
    def neurons(self) -> int:
        """Output elements (the neurons this layer drives)."""
        return int(math.prod(self.output_shape))

    @property
    def input_elements(self) -> int:
        return int(math.prod(self.input_shape))

    @property
    def fan_in(self) -> int:
        """Synapses arriving at one output neuron (away from borders)."""
        if self.kind == "Linear":
            return self.input_channels
        if self.kind == "ConvTranspose2d":
            taps = math.ceil(self.kernel[0] / self.stride[0]) * math.ceil(self.kernel[1] / self.stride[1])
            return self.input_channels // self.groups * taps
        return self.input_channels // self.groups * self.kernel[0] * self.kernel[1]

    @property
    def weights_per_output_channel(self) -> int:
        return max(1, self.weights // max(1, self.output_channels))

    @property
    def spatial(self) -> tuple[int, int]:
        """(H, W) of the output, (1, 1) for a linear layer."""
        return (int(self.output_shape[1]), int(self.output_shape[2])) if len(self.output_shape) == 3 else (1, 1)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> LayerGeometry:
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except TypeError as error:
            raise GeometryError(f"trace geometry entry is malformed: {error}") from None


def _graded(graph: ir.Graph, name: str, encoding: str | None, seen: dict[str, bool]) -> bool:
    """Whether the values on ``name``'s output wire are graded (not binary spikes)."""
    if name in seen:
        return seen[name]
    node = graph.nodes[name]
    if node.kind == "Input":
        result = encoding not in BINARY_ENCODINGS
    elif node.kind in ("IF", "LIF", "CubaLIF"):
        result = False
    elif node.kind in _BINARY_PASSTHROUGH or (node.kind == "Upsample" and getattr(node, "mode", "") == "nearest"):
        result = any(_graded(graph, p, encoding, seen) for p in graph.predecessors(name))
    else:  # SigmaDelta, ReLU, pools that sum, Add, bilinear upsampling, synaptic layers: values
        result = True
    seen[name] = result
    return result


def layer_geometry(graph: ir.Graph, encoding: str | None = None) -> list[LayerGeometry]:
    """One LayerGeometry per synaptic layer, in the Trace's layer order.

    ``encoding`` (the Stream's encoding name) decides whether the network input is binary; under
    ``radix`` every layer receives bit-serial binary spikes.
    """
    seen: dict[str, bool] = {}
    layers = []
    for name in graph.synaptic_layers():
        node = graph.nodes[name]
        source = graph.predecessors(name)[0]
        weight = np.asarray(node.weight)
        graded = False if encoding == "radix" else _graded(graph, source, encoding, seen)
        common = dict(name=name, kind=node.kind, input_shape=tuple(int(s) for s in graph.shapes[source]),
                      output_shape=tuple(int(s) for s in graph.shapes[name]), weights=int(weight.size),
                      nonzero_weights=int(np.count_nonzero(weight)), graded_input=bool(graded))
        if node.kind in ("Conv2d", "ConvTranspose2d"):
            layers.append(LayerGeometry(**common, kernel=tuple(int(k) for k in node.kernel_size),
                                        stride=tuple(int(s) for s in node.stride),
                                        padding=tuple(int(p) for p in node.padding), groups=int(node.groups)))
        else:
            layers.append(LayerGeometry(**common))
    return layers


def attach_geometry(trace, graph: ir.Graph) -> None:
    """Record the graph's layer geometry in ``trace.metadata`` (it is saved with the trace)."""
    geometry = layer_geometry(graph, trace.metadata.get("encoding"))
    if [g.name for g in geometry] != list(trace.layers):
        raise GeometryError(f"the graph's synaptic layers {[g.name for g in geometry]} are not the trace's "
                            f"layers {list(trace.layers)}")
    trace.metadata[GEOMETRY_KEY] = [g.to_dict() for g in geometry]


def _estimated(trace, index: int, name: str, kind: str) -> LayerGeometry:
    """Geometry guessed from the trace's arrays alone (output channels, input channels, tile grid)."""
    encoding = trace.metadata.get("encoding")
    graded = encoding not in BINARY_ENCODINGS if index == 0 else encoding in ("sigma-delta", "frame-delta", None)
    macs = int(trace.dense_macs[index])
    if trace.record_work and trace.frames:
        c_out = int(trace.channel_work(name).shape[1])
        c_in = int(trace.input_channel_work(name).shape[1])
        tiles = trace.tile_work(name).shape[1:]
    else:
        c_out, c_in, tiles = 1, 1, (1, 1)
    if kind == "Linear":
        return LayerGeometry(name, kind, (c_in,), (c_out,), weights=macs, nonzero_weights=macs,
                             graded_input=graded, exact=False)
    # Output positions are not stored; the tile grid bounds them: take the full tile area.
    height, width = tiles[0] * trace.tile[0], tiles[1] * trace.tile[1]
    positions = max(1, height * width)
    fan_in = max(1, round(macs / max(1, c_out * positions)))
    return LayerGeometry(name, kind, (c_in, height, width), (c_out, height, width), weights=fan_in * c_out,
                         nonzero_weights=fan_in * c_out, graded_input=graded, exact=False)


def trace_geometry(trace) -> list[LayerGeometry]:
    """The layer geometry recorded in a trace, or an estimate from its arrays (``exact=False``)."""
    stored = trace.metadata.get(GEOMETRY_KEY)
    if stored:
        geometry = [LayerGeometry.from_dict(entry) for entry in stored]
        if [g.name for g in geometry] != list(trace.layers):
            raise GeometryError("the trace's geometry does not list the same layers as its counts")
        return geometry
    return [_estimated(trace, i, name, kind) for i, (name, kind) in enumerate(zip(trace.layers, trace.kinds,
                                                                                   strict=True))]
