"""NIR interchange: IR ↔ ``nir.NIRGraph`` and ``.nir`` (HDF5) files.

Node kinds NIR 1.0 has are written as the NIR primitive (Conv2d, Affine/Linear, AvgPool2d,
SumPool2d, Flatten, IF, LIF, CubaLIF, Input, Output). Kinds it lacks (ReLU, SigmaDelta, MaxPool2d,
Upsample, ConvTranspose2d, Add, Concat) are written as a *carrier*: a NIR primitive with the same
input and output shapes, so that other NIR tools still load and type-check the file, plus node
metadata under ``spikestream.*`` that lets spikestream read the node back exactly. The format is
specified in ``docs/nir.md``; ``from_nir(to_nir(g)).equals(g)`` holds for every node kind.

Both directions are table-driven: ``NIR_WRITERS`` (keyed by IR kind) and ``NIR_READERS`` (keyed by
NIR node class), each filled by a decorator that rejects duplicates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import h5py
import nir
import numpy as np

from spikestream import ir
from spikestream.errors import InputError
from spikestream.ir import DEFAULT_DT, Graph, NeuronNode, Node, Shape, UnsupportedError

EXTENSION_VERSION = 1  # bump when the meaning of a spikestream.* key changes

# Graph metadata keys
VERSION_KEY = "spikestream.version"  # int, EXTENSION_VERSION of the writer
DT_KEY = "spikestream.dt"  # float, seconds per time step (Graph.dt)
NODE_ORDER_KEY = "spikestream.node_order"  # JSON list of node names, the IR's node order
# Node metadata keys
KIND_KEY = "spikestream.kind"  # str, the IR node kind; on every node spikestream writes
PARAMS_KEY = "spikestream.params"  # group, every field of an extension node (carriers only)
RESET_KEY = "spikestream.reset"  # "zero" | "subtract", on IF, LIF, CubaLIF
LAYOUT_KEY = "spikestream.param_layout"  # group: neuron parameter -> "scalar" | "channel" | "neuron"
HAS_BIAS_KEY = "spikestream.has_bias"  # False on a Conv2d whose IR node has no bias
ADAPTER_OF_KEY = "spikestream.adapter_of"  # str, the Add or Concat node this input adapter feeds
ADAPTER_INDEX_KEY = "spikestream.input_index"  # int, which input of that node the adapter carries


class NIRFormatError(InputError):
    """A NIR file or graph that spikestream cannot read; the message is one line."""


class UnsupportedNIRNodeError(NIRFormatError, UnsupportedError):
    """A NIR node kind with no IR equivalent; the message names it and lists the supported ones."""


# --- registries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WriteContext:
    input_shapes: list[Shape]
    output_shape: Shape
    dt: float  # seconds per step, the graph's


@dataclass(frozen=True)
class _ReadContext:
    metadata: Mapping  # the NIR node's metadata
    dt: float  # seconds per step, the graph's


NIRWriter = Callable[[Node, _WriteContext], nir.NIRNode]
NIRReader = Callable[[str, nir.NIRNode, _ReadContext], Node]


InputAdapter = Callable[[Node, list[Shape], int], nir.NIRNode]


@dataclass(frozen=True)
class _WriterEntry:
    write: NIRWriter
    extension: bool  # True: the NIR node is a carrier, the IR node lives in the metadata
    input_adapter: InputAdapter | None  # for multi-input kinds: one NIR node per input (see to_nir)


NIR_WRITERS: dict[str, _WriterEntry] = {}
NIR_READERS: dict[type, NIRReader] = {}


def nir_writer(kind: str, extension: bool = False,
               input_adapter: InputAdapter | None = None) -> Callable[[NIRWriter], NIRWriter]:
    """Register how IR nodes of ``kind`` are written; ``extension`` marks a carrier (see module doc),
    ``input_adapter`` builds the NIR node each input passes through (multi-input kinds)."""
    def register(write: NIRWriter) -> NIRWriter:
        if kind in NIR_WRITERS:
            raise ValueError(f"NIR writer for {kind!r} is registered twice")
        if kind not in ir.NODE_KINDS:
            raise ValueError(f"NIR writer for unknown node kind {kind!r}")
        NIR_WRITERS[kind] = _WriterEntry(write, extension, input_adapter)
        return write
    return register


def nir_reader(*nir_types: type) -> Callable[[NIRReader], NIRReader]:
    """Register how NIR nodes of these classes become IR nodes."""
    def register(read: NIRReader) -> NIRReader:
        for nir_type in nir_types:
            if nir_type in NIR_READERS:
                raise ValueError(f"NIR reader for {nir_type.__name__} is registered twice")
            NIR_READERS[nir_type] = read
        return read
    return register


def supported_nir_nodes() -> list[str]:
    return sorted(t.__name__ for t in NIR_READERS)


def extension_kinds() -> list[str]:
    """IR kinds written as carriers with spikestream metadata."""
    return sorted(kind for kind, entry in NIR_WRITERS.items() if entry.extension)


# --- IR -> NIR ------------------------------------------------------------------------------------


def to_nir(graph: Graph) -> nir.NIRGraph:
    """The graph as a ``nir.NIRGraph`` (spikestream extension metadata included, see docs/nir.md).

    Each input of an Add or Concat passes through its own adapter node ``<name>.input<i>``: NIR
    sums the edges entering a node, so the adapters make the sum compute the Add or Concat, and
    they keep edges distinct when a node feeds both inputs (NIR rejects duplicate edges).
    """
    nodes: dict[str, nir.NIRNode] = {}
    adapters: dict[str, list[str]] = {}  # node name -> its adapter names, by input index
    adapter_edges: list[tuple[str, str]] = []
    for name in graph.order:
        node = graph.nodes[name]
        entry = NIR_WRITERS.get(node.kind)
        if entry is None:
            raise UnsupportedError(f"cannot write node {name!r} of kind {node.kind} to NIR; "
                                   f"supported: {', '.join(sorted(NIR_WRITERS))}")
        context = _WriteContext([graph.shapes[p] for p in graph.predecessors(name)], graph.shapes[name], graph.dt)
        nir_node = entry.write(node, context)
        nir_node.metadata[KIND_KEY] = node.kind
        if entry.extension:
            params = _encode_params(node)
            if params:
                nir_node.metadata[PARAMS_KEY] = params
        nodes[name] = nir_node
        if entry.input_adapter is not None:
            adapters[name] = []
            for index in range(len(context.input_shapes)):
                adapter_name = f"{name}.input{index}"
                if adapter_name in graph.nodes:
                    raise UnsupportedError(f"cannot write {node.kind} {name!r} to NIR: its input adapter name "
                                           f"{adapter_name!r} is already a node name; rename that node")
                adapter = entry.input_adapter(node, context.input_shapes, index)
                adapter.metadata.update({ADAPTER_OF_KEY: name, ADAPTER_INDEX_KEY: index})
                nodes[adapter_name] = adapter
                adapters[name].append(adapter_name)
                adapter_edges.append((adapter_name, name))
    edges: list[tuple[str, str]] = []
    inputs_seen: dict[str, int] = {}
    for source, target in graph.edges:
        if target in adapters:  # the i-th edge into the node goes to its i-th adapter instead
            index = inputs_seen.get(target, 0)
            inputs_seen[target] = index + 1
            target = adapters[target][index]
        edges.append((source, target))
    metadata = {**graph.metadata, VERSION_KEY: EXTENSION_VERSION, DT_KEY: graph.dt,
                NODE_ORDER_KEY: json.dumps(list(graph.nodes))}
    return nir.NIRGraph(nodes=nodes, edges=edges + adapter_edges, metadata=metadata, type_check=False)


def _encode_params(node: Node) -> dict:
    """Every field of an extension node as HDF5-friendly values (see docs/nir.md)."""
    encoded = {}
    for key, value in node.params().items():
        if value is None:
            continue  # absent key: the field's default, None
        if isinstance(value, np.ndarray):
            # 0-d datasets cannot be compressed, and nir.write compresses every array
            encoded[key] = float(value) if value.ndim == 0 else np.array(value, dtype=np.float32)
        elif isinstance(value, tuple):
            encoded[key] = np.array(value, dtype=np.int64)
        else:
            encoded[key] = value
    return encoded


def _carrier_identity(shape: Shape) -> nir.Scale:
    """Shape-preserving carrier: a scale by one (an identity for other NIR tools)."""
    return nir.Scale(scale=np.ones(shape, dtype=np.float32))


def _carrier_reshape(input_shape: Shape, output_shape: Shape) -> nir.Conv2d:
    """A zero-weight Conv2d whose NIR type is exactly (C_in, H, W) -> (C_out, H', W').

    nir 1.0.8 infers conv output shapes from the kernel height alone, so the kernel is square
    (2 x 2) and each axis is fitted by its dilation d and padding p: n' = n + 2p − d. Growing by an
    odd g = n' − n uses d = 1, p = (g + 1)/2; by an even g, d = 2, p = g/2 + 1; shrinking, p = 0 and
    d = n − n'.
    """
    dilation, padding = [], []
    for size, target in zip(input_shape[1:], output_shape[1:], strict=True):
        growth = target - size
        if growth < 0:
            dilation.append(-growth)
            padding.append(0)
        else:
            dilation.append(1 if growth % 2 else 2)
            padding.append((growth + dilation[-1]) // 2)
    weight = np.zeros((output_shape[0], input_shape[0], 2, 2), dtype=np.float32)
    return nir.Conv2d(input_shape=tuple(input_shape[1:]), weight=weight, stride=(1, 1), padding=tuple(padding),
                      dilation=tuple(dilation), groups=1, bias=np.zeros(output_shape[0], dtype=np.float32))


def _add_adapter(node: ir.Add, input_shapes: list[Shape], index: int) -> nir.Scale:
    return _carrier_identity(input_shapes[index])


def _concat_adapter(node: ir.Concat, input_shapes: list[Shape], index: int) -> nir.NIRNode:
    """Input ``index`` of a Concat placed at its offset in the output, zeros elsewhere.

    NIR sums the edges that enter a node, so the sum of these adapters *is* the concatenation and
    other NIR tools compute it exactly: a 0/1 matrix for rank 1, a 0/1 1x1 Conv2d for channels.
    A concatenation along H or W has no square-kernel NIR form; its adapters are zero carriers.
    """
    shape = input_shapes[index]
    axis = node.axis % len(shape)
    offset = sum(s[axis] for s in input_shapes[:index])
    total = sum(s[axis] for s in input_shapes)
    identity = np.arange(shape[0])
    if len(shape) == 1:
        weight = np.zeros((total, shape[0]), dtype=np.float32)
        weight[offset + identity, identity] = 1.0
        return nir.Linear(weight=weight)
    if len(shape) != 3:
        raise UnsupportedError(f"cannot write Concat {node.name!r} of rank-{len(shape)} inputs to NIR; "
                               "supported: rank 1 (F,) and rank 3 (C, H, W)")
    if axis > 0:
        output_shape = tuple(total if i == axis else s for i, s in enumerate(shape))
        return _carrier_reshape(shape, output_shape)
    weight = np.zeros((total, shape[0], 1, 1), dtype=np.float32)
    weight[offset + identity, identity, 0, 0] = 1.0
    return nir.Conv2d(input_shape=tuple(shape[1:]), weight=weight, stride=(1, 1), padding=(0, 0),
                      dilation=(1, 1), groups=1, bias=np.zeros(total, dtype=np.float32))


def _per_neuron(value: np.ndarray, shape: Shape) -> tuple[np.ndarray, str]:
    """Broadcast an IR neuron parameter to one value per neuron (NIR's layout) and name its IR layout."""
    if value.ndim == 0:
        return np.full(shape, value, dtype=np.float32), "scalar"
    if value.shape == tuple(shape):
        return np.array(value, dtype=np.float32), "neuron"
    per_channel = value.reshape(shape[0], *([1] * (len(shape) - 1)))
    return np.array(np.broadcast_to(per_channel, shape), dtype=np.float32), "channel"


def _neuron_fields(node: NeuronNode, shape: Shape, names: dict[str, str]) -> tuple[dict, dict]:
    """NIR keyword arguments for the IR fields in ``names`` (IR name -> NIR name), and their layouts."""
    arguments, layouts = {}, {}
    for ir_name, nir_name in names.items():
        arguments[nir_name], layouts[ir_name] = _per_neuron(getattr(node, ir_name), shape)
    return arguments, layouts


def _write_neuron(nir_type: type, names: dict[str, str]) -> NIRWriter:
    def write(node: NeuronNode, context: _WriteContext) -> nir.NIRNode:
        arguments, layouts = _neuron_fields(node, context.output_shape, names)
        if nir_type is nir.IF:  # float64 so that reading back (x dt, to float32) is exact
            arguments["r"] = ir.integrator_resistance(arguments["r"].astype(np.float64), context.dt)
        nir_node = nir_type(**arguments)
        nir_node.metadata.update({RESET_KEY: node.reset, LAYOUT_KEY: layouts})
        return nir_node
    return write


_IF_FIELDS = {"threshold": "v_threshold", "r": "r", "v_reset": "v_reset"}
_LIF_FIELDS = {"tau": "tau", "threshold": "v_threshold", "r": "r", "v_leak": "v_leak", "v_reset": "v_reset"}
_CUBA_FIELDS = {"tau_syn": "tau_syn", "tau_mem": "tau_mem", "threshold": "v_threshold", "r": "r",
                "v_leak": "v_leak", "v_reset": "v_reset", "w_in": "w_in"}

nir_writer("IF")(_write_neuron(nir.IF, _IF_FIELDS))
nir_writer("LIF")(_write_neuron(nir.LIF, _LIF_FIELDS))
nir_writer("CubaLIF")(_write_neuron(nir.CubaLIF, _CUBA_FIELDS))


@nir_writer("Input")
def _write_input(node: ir.Input, context: _WriteContext) -> nir.Input:
    return nir.Input(input_type={"input": np.array(node.shape)})


@nir_writer("Output")
def _write_output(node: ir.Output, context: _WriteContext) -> nir.Output:
    return nir.Output(output_type={"output": np.array(context.output_shape)})


@nir_writer("Conv2d")
def _write_conv2d(node: ir.Conv2d, context: _WriteContext) -> nir.Conv2d:
    bias = np.zeros(node.weight.shape[0], np.float32) if node.bias is None else np.array(node.bias)
    nir_node = nir.Conv2d(input_shape=tuple(context.input_shapes[0][1:]), weight=np.array(node.weight),
                          stride=node.stride, padding=node.padding, dilation=node.dilation, groups=node.groups,
                          bias=bias)
    if node.bias is None:
        nir_node.metadata[HAS_BIAS_KEY] = False
    return nir_node


@nir_writer("Linear")
def _write_linear(node: ir.Linear, context: _WriteContext) -> nir.NIRNode:
    if node.bias is None:
        return nir.Linear(weight=np.array(node.weight))
    return nir.Affine(weight=np.array(node.weight), bias=np.array(node.bias))


def _write_pool(nir_type: type) -> NIRWriter:
    def write(node, context: _WriteContext) -> nir.NIRNode:
        return nir_type(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                        padding=np.array(node.padding))
    return write


nir_writer("AvgPool2d")(_write_pool(nir.AvgPool2d))
nir_writer("SumPool2d")(_write_pool(nir.SumPool2d))
nir_writer("MaxPool2d", extension=True)(_write_pool(nir.AvgPool2d))  # same window, same shapes


@nir_writer("Flatten")
def _write_flatten(node: ir.Flatten, context: _WriteContext) -> nir.Flatten:
    return nir.Flatten(input_type={"input": np.array(context.input_shapes[0])}, start_dim=node.start_dim,
                       end_dim=node.end_dim)


def _write_identity_carrier(node: Node, context: _WriteContext) -> nir.Scale:
    return _carrier_identity(context.output_shape)


def _write_reshape_carrier(node: Node, context: _WriteContext) -> nir.Conv2d:
    return _carrier_reshape(context.input_shapes[0], context.output_shape)


for _kind in ("ReLU", "SigmaDelta", "Requantize"):
    nir_writer(_kind, extension=True)(_write_identity_carrier)
nir_writer("Add", extension=True, input_adapter=_add_adapter)(_write_identity_carrier)
nir_writer("Concat", extension=True, input_adapter=_concat_adapter)(_write_identity_carrier)
for _kind in ("Upsample", "ConvTranspose2d"):
    nir_writer(_kind, extension=True)(_write_reshape_carrier)


# --- NIR -> IR ------------------------------------------------------------------------------------


def _numpy(value) -> np.ndarray:
    """A NIR field as a numpy array (in-memory graphs from nirtorch may hold torch tensors)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _pair(value) -> tuple[int, int]:
    array = _numpy(value).reshape(-1)
    return (int(array[0]),) * 2 if array.size == 1 else (int(array[0]), int(array[1]))


def _plain(value):
    """HDF5 scalars back to Python values."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _ir_param(value, layout: str | None) -> np.ndarray:
    """A NIR per-neuron parameter in its IR layout (exact: broadcasting only copied values)."""
    array = _numpy(value).astype(np.float32)
    if layout == "scalar" or (layout is None and array.size == 1):
        return array.reshape(-1)[0].reshape(())
    if layout == "channel":
        return array.reshape(array.shape[0], -1)[:, 0]
    return array


def _neuron_reader(ir_type: type, names: dict[str, str]) -> NIRReader:
    def read(name: str, node: nir.NIRNode, context: _ReadContext) -> Node:
        layouts = {k: _plain(v) for k, v in context.metadata.get(LAYOUT_KEY, {}).items()}
        values = {ir_name: getattr(node, nir_name) for ir_name, nir_name in names.items()}
        if ir_type is ir.IF:
            values["r"] = ir.integrator_gain(_numpy(values["r"]).astype(np.float64), context.dt)
        arguments = {key: _ir_param(value, layouts.get(key)) for key, value in values.items()}
        return ir_type(name, reset=_plain(context.metadata.get(RESET_KEY, "zero")), **arguments)
    return read


nir_reader(nir.IF)(_neuron_reader(ir.IF, _IF_FIELDS))
nir_reader(nir.LIF)(_neuron_reader(ir.LIF, _LIF_FIELDS))
nir_reader(nir.CubaLIF)(_neuron_reader(ir.CubaLIF, _CUBA_FIELDS))


@nir_reader(nir.Input)
def _read_input(name: str, node: nir.Input, context: _ReadContext) -> ir.Input:
    shape = node.input_type.get("input")
    if shape is None:
        raise NIRFormatError(f"NIR Input {name!r} has no shape")
    return ir.Input(name, shape=tuple(int(s) for s in _numpy(shape).reshape(-1)))


@nir_reader(nir.Output)
def _read_output(name: str, node: nir.Output, context: _ReadContext) -> ir.Output:
    return ir.Output(name)


@nir_reader(nir.Affine, nir.Linear)
def _read_affine(name: str, node: nir.NIRNode, context: _ReadContext) -> ir.Linear:
    weight = _numpy(node.weight)
    if weight.ndim != 2:
        raise UnsupportedNIRNodeError(f"unsupported NIR node {type(node).__name__} at {name!r}: weight of "
                                      f"shape {weight.shape}; only (out, in) matrices are supported")
    bias = _numpy(node.bias) if isinstance(node, nir.Affine) else None
    return ir.Linear(name, weight=weight, bias=bias)


@nir_reader(nir.Conv2d)
def _read_conv2d(name: str, node: nir.Conv2d, context: _ReadContext) -> ir.Conv2d:
    weight = _numpy(node.weight)
    dilation = _pair(node.dilation)
    padding = node.padding
    if isinstance(padding, (str, bytes)):
        padding = _plain(padding)
        total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:], strict=True)]
        if padding == "same" and any(t % 2 for t in total):
            raise UnsupportedNIRNodeError(f"unsupported NIR node Conv2d at {name!r}: padding 'same' with an even "
                                          "kernel pads asymmetrically")
        padding = (0, 0) if padding == "valid" else (total[0] // 2, total[1] // 2)
    bias = None if not _plain(context.metadata.get(HAS_BIAS_KEY, True)) else _numpy(node.bias)
    return ir.Conv2d(name, weight=weight, bias=bias, stride=_pair(node.stride), padding=_pair(padding),
                     dilation=dilation, groups=int(_plain(node.groups)))


def _pool_reader(ir_type: type) -> NIRReader:
    def read(name: str, node: nir.NIRNode, context: _ReadContext) -> Node:
        return ir_type(name, kernel_size=_pair(node.kernel_size), stride=_pair(node.stride),
                       padding=_pair(node.padding))
    return read


nir_reader(nir.AvgPool2d)(_pool_reader(ir.AvgPool2d))
nir_reader(nir.SumPool2d)(_pool_reader(ir.SumPool2d))


@nir_reader(nir.Flatten)
def _read_flatten(name: str, node: nir.Flatten, context: _ReadContext) -> ir.Flatten:
    # NIR 1.0 Flatten dims index the per-sample input_type (snnTorch and SpikingJelly subtract the
    # batch dim when exporting), exactly like the IR's.
    return ir.Flatten(name, start_dim=int(_plain(node.start_dim)), end_dim=int(_plain(node.end_dim)))


def _decode_extension(name: str, kind: str, metadata: Mapping) -> Node:
    """Rebuild an extension node from its ``spikestream.params`` (inverse of ``_encode_params``)."""
    node_type = ir.NODE_KINDS[kind]
    known = {f.name for f in fields(node_type)}
    arguments = {}
    for key, value in metadata.get(PARAMS_KEY, {}).items():
        if key not in known:
            raise NIRFormatError(f"extension node {name!r} ({kind}) has unknown parameter {key!r}")
        if key in node_type.array_fields:
            arguments[key] = np.asarray(value, dtype=np.float32)
        elif isinstance(value, np.ndarray):
            arguments[key] = tuple(int(v) for v in value)
        else:
            arguments[key] = _plain(value)
    return node_type(name, **arguments)


def _read_node(name: str, node: nir.NIRNode, dt: float) -> Node:
    metadata = node.metadata or {}
    kind = _plain(metadata.get(KIND_KEY))
    if kind is not None and kind not in NIR_WRITERS:
        raise UnsupportedNIRNodeError(f"unsupported spikestream extension kind {kind!r} at {name!r}; "
                                      f"supported: {', '.join(sorted(NIR_WRITERS))}")
    if kind is not None and NIR_WRITERS[kind].extension:
        return _decode_extension(name, kind, metadata)
    reader = NIR_READERS.get(type(node))
    if reader is None:
        raise UnsupportedNIRNodeError(f"unsupported NIR node {type(node).__name__!r} at {name!r}; "
                                      f"supported: {', '.join(supported_nir_nodes())}")
    return reader(name, node, _ReadContext(metadata, dt))


def from_nir(nir_graph: nir.NIRGraph, dt: float | None = None) -> Graph:
    """The IR graph of a ``nir.NIRGraph``.

    ``dt`` (seconds per step) defaults to the one spikestream stored in the graph's metadata, else
    ``DEFAULT_DT``. Several NIR edges into a single-input node mean a sum (NIR's rule); an Add node
    named ``<node>.sum`` is inserted for them. Extension nodes (docs/nir.md) are read back exactly.
    """
    graph_metadata = dict(nir_graph.metadata or {})
    version = _plain(graph_metadata.get(VERSION_KEY, EXTENSION_VERSION))
    if int(version) > EXTENSION_VERSION:
        raise NIRFormatError(f"the graph uses spikestream NIR extension version {version}; this spikestream "
                             f"reads versions up to {EXTENSION_VERSION}")
    if dt is None:
        dt = float(_plain(graph_metadata.get(DT_KEY, DEFAULT_DT)))
    adapters: dict[str, tuple[str, int]] = {}  # adapter name -> (the node it feeds, input index)
    nodes: dict[str, Node] = {}
    for name, nir_node in nir_graph.nodes.items():
        metadata = nir_node.metadata or {}
        if ADAPTER_OF_KEY in metadata:
            adapters[name] = (_plain(metadata[ADAPTER_OF_KEY]), int(_plain(metadata[ADAPTER_INDEX_KEY])))
            continue
        nodes[name] = _read_node(name, nir_node, dt)
    edges = _bypass_adapters([(str(a), str(b)) for a, b in nir_graph.edges], adapters)
    nodes, edges = _sum_fan_in(nodes, edges)
    order = json.loads(_plain(graph_metadata.get(NODE_ORDER_KEY, "[]")))
    rank = {name: index for index, name in enumerate(order)}
    ordered = sorted(nodes.values(), key=lambda n: rank.get(n.name, len(rank)))
    user_metadata = {str(k): str(_plain(v)) for k, v in graph_metadata.items() if not str(k).startswith("spikestream.")}
    return Graph(ordered, edges, dt=dt, metadata=user_metadata)


def _bypass_adapters(edges: list[tuple[str, str]], adapters: dict[str, tuple[str, int]]) -> list[tuple[str, str]]:
    """Replace ``a -> adapter -> n`` by ``a -> n``, the edges into ``n`` ordered by input index."""
    kept = [(a, b) for a, b in edges if a not in adapters]
    slots: dict[str, list[int]] = {}  # target -> positions in ``kept`` of its adapted edges
    for position, (_, b) in enumerate(kept):
        if b in adapters:
            slots.setdefault(adapters[b][0], []).append(position)
    result = [(a, adapters[b][0]) if b in adapters else (a, b) for a, b in kept]
    for positions in slots.values():
        by_index = sorted(positions, key=lambda p: adapters[kept[p][1]][1])
        sources = [kept[p][0] for p in by_index]
        for position, source in zip(positions, sources, strict=True):
            result[position] = (source, result[position][1])
    return result


def _sum_fan_in(nodes: dict[str, Node], edges: list[tuple[str, str]]) -> tuple[dict[str, Node], list]:
    """Make NIR's implicit sum of several edges into a single-input node an explicit Add."""
    sources: dict[str, list[str]] = {}
    for a, b in edges:
        sources.setdefault(b, []).append(a)
    for target, inputs in sources.items():
        if len(inputs) < 2 or nodes[target].arity != 1:
            continue
        add_name = f"{target}.sum"
        if add_name in nodes:
            raise NIRFormatError(f"cannot name the sum of the inputs of {target!r}: {add_name!r} exists")
        nodes[add_name] = ir.Add(add_name)
        edges = [(a, add_name) if b == target else (a, b) for a, b in edges] + [(add_name, target)]
    return nodes, edges


# --- files ------------------------------------------------------------------------------------------


def save_nir(graph: Graph, path: str | os.PathLike) -> None:
    """Write ``graph`` to a NIR (HDF5) file, spikestream extension metadata included."""
    for name in graph.nodes:
        if "/" in name:
            raise ValueError(f"node name {name!r} contains '/', which HDF5 cannot store; rename the node")
    nir.write(path, to_nir(graph))


def load_nir(path: str | os.PathLike, dt: float | None = None) -> Graph:
    """Read a NIR file written by spikestream, snnTorch, SpikingJelly or any NIR 1.0 tool.

    ``dt`` overrides the time step (seconds); by default the one spikestream stored, else
    ``DEFAULT_DT``. Raises ``NIRFormatError`` (a ``ValueError``) with one line naming the file and the
    reason when it is missing, not HDF5, corrupt or truncated, or holds an unsupported node.
    """
    shown = os.fspath(path)
    if not os.path.exists(path):
        raise NIRFormatError(f"cannot read NIR file {shown!r}: no such file")
    _check_declared_sizes(path, shown)
    try:
        nir_graph = nir.read(path, type_check=False)  # our Graph verifies shapes with clearer messages
    except AssertionError as error:  # nir asserts on node types it does not know
        raise NIRFormatError(f"cannot read NIR file {shown!r}: {_unknown_types(path) or error}") from error
    except (OSError, RuntimeError) as error:  # h5py raises RuntimeError on damaged group structures
        raise NIRFormatError(f"cannot read NIR file {shown!r}: not an HDF5 file, or corrupt or truncated "
                             f"({_first_line(error)})") from error
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as error:
        raise NIRFormatError(f"cannot read NIR file {shown!r}: not a NIR graph ({_first_line(error)})") from error
    try:
        return from_nir(nir_graph, dt=dt)
    except UnsupportedNIRNodeError:
        raise
    except (ir.IRError, NIRFormatError) as error:
        raise NIRFormatError(f"cannot read NIR file {shown!r}: {error}") from error
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as error:  # damaged parameter arrays
        raise NIRFormatError(f"cannot read NIR file {shown!r}: invalid NIR graph ({_first_line(error)})") from error


def _check_declared_sizes(path: str | os.PathLike, shown: str) -> None:
    """Refuse a file whose datasets declare far more data than the file could hold.

    A damaged HDF5 header can declare a dataset (or one chunk of it) of gigabytes in a file of kilobytes;
    h5py would try to allocate it. NIR writes its arrays uncompressed, so no honest dataset is larger
    than the file; 16x leaves room for compression by other writers. Objects that cannot even be
    opened are left to ``nir.read``, which reports them."""
    limit = max(64 * 2**20, 16 * os.path.getsize(path))

    def walk(group: h5py.Group) -> None:
        for name in list(group.keys()):
            try:
                item = group[name]
            except (OSError, RuntimeError, KeyError, ValueError):
                continue
            if isinstance(item, h5py.Group):
                walk(item)
            elif isinstance(item, h5py.Dataset):
                elements = max(item.size or 0, int(np.prod(item.chunks)) if item.chunks else 0)
                if elements * item.dtype.itemsize > limit:
                    raise NIRFormatError(f"cannot read NIR file {shown!r}: dataset {item.name!r} declares "
                                         f"{elements * item.dtype.itemsize:,} bytes in a file of "
                                         f"{os.path.getsize(path):,} bytes (corrupt)")

    try:
        with h5py.File(path, "r") as file:
            walk(file)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        return  # not readable as HDF5 at all: nir.read says why


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _unknown_types(path: str | os.PathLike) -> str | None:
    """Name the node types in the file that this nir package cannot read, if any."""
    known = {name for name in nir.ir.__all__ if name[0].isupper() and name != "NIRNode"}
    found: set[str] = set()

    def visit(item_name: str, item) -> None:
        if isinstance(item, h5py.Dataset) and item_name.split("/")[-1] == "type":
            value = _plain(item[()])
            if isinstance(value, str) and value not in known:
                found.add(value)

    with h5py.File(path, "r") as file:
        file.visititems(visit)
    if not found:
        return None
    return f"unknown NIR node type {', '.join(sorted(found))} (nir {nir.version} knows {', '.join(sorted(known))})"
