"""NIR interchange: lossless IR ↔ NIR round trips, clear errors, and spike-exact oracles.

The oracles are snnTorch and SpikingJelly themselves: a network is exported with the framework's
own NIR exporter, loaded here, run with ``spikestream.engine.simulate``, and its spikes compared with
the framework's own multi-step run on the same input.
"""

import tempfile
import warnings
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikestream import ir
from spikestream.engine import simulate
from spikestream.frontend import (
    NIR_WRITERS,
    NIRFormatError,
    extension_kinds,
    from_nir,
    load_nir,
    save_nir,
    supported_nir_nodes,
    to_nir,
)

T = 25  # time steps of the oracle runs


# --- random valid graphs with every node kind -----------------------------------------------------


class _GraphBuilder:
    """Builds a graph tensor by tensor; ``current`` is the name of the newest tensor."""

    def __init__(self, draw, rng: np.random.Generator, input_shape: tuple[int, ...]):
        self.draw, self.rng = draw, rng
        self.nodes: list[ir.Node] = [ir.Input("input", shape=input_shape)]
        self.edges: list[tuple[str, str]] = []
        self.shapes = {"input": input_shape}
        self.current = "input"

    def add(self, node: ir.Node, inputs: list[str] | None = None) -> str:
        inputs = [self.current] if inputs is None else inputs
        self.shapes[node.name] = node.infer_shape([self.shapes[i] for i in inputs])
        self.nodes.append(node)
        self.edges.extend((i, node.name) for i in inputs)
        self.current = node.name
        return node.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shapes[self.current]

    def array(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape).astype(np.float32)

    def neuron_param(self, positive: bool = False) -> np.ndarray:
        """Scalar, per-channel or per-neuron, as the IR allows."""
        layout = self.draw(st.sampled_from(["scalar", "channel", "neuron"]))
        shape = {"scalar": (), "channel": self.shape[:1], "neuron": self.shape}[layout]
        value = self.array(*shape)
        return np.abs(value) * 1e-3 + 1e-4 if positive else value

    def reset(self) -> str:
        return self.draw(st.sampled_from(ir.RESET_MODES))


def _spatial_window(builder: _GraphBuilder) -> dict:
    _, height, width = builder.shape
    kernel = (builder.draw(st.integers(1, min(3, height))), builder.draw(st.integers(1, min(3, width))))
    stride = (builder.draw(st.integers(1, 2)), builder.draw(st.integers(1, 2)))
    padding = tuple(builder.draw(st.integers(0, k // 2)) for k in kernel)
    return {"kernel_size": kernel, "stride": stride, "padding": padding}


# One factory per node kind that may appear between Input and Output. A kind added to the IR without
# a factory here fails test_every_kind_has_a_factory, and one without NIR support fails the round trip.
def _conv2d(b: _GraphBuilder, name: str) -> None:
    channels = b.shape[0]
    groups = b.draw(st.sampled_from([g for g in (1, 2) if channels % g == 0]))
    out_channels = groups * b.draw(st.integers(1, 3))
    window = _spatial_window(b)
    weight = b.array(out_channels, channels // groups, *window["kernel_size"])
    bias = b.array(out_channels) if b.draw(st.booleans()) else None
    b.add(ir.Conv2d(name, weight=weight, bias=bias, stride=window["stride"], padding=window["padding"],
                    dilation=1, groups=groups))


def _conv_transpose2d(b: _GraphBuilder, name: str) -> None:
    channels = b.shape[0]
    stride = b.draw(st.integers(1, 2))
    weight = b.array(channels, b.draw(st.integers(1, 3)), b.draw(st.integers(1, 3)), b.draw(st.integers(1, 3)))
    bias = b.array(weight.shape[1]) if b.draw(st.booleans()) else None
    b.add(ir.ConvTranspose2d(name, weight=weight, bias=bias, stride=stride, output_padding=stride - 1))


def _pool(kind: str):
    def make(b: _GraphBuilder, name: str) -> None:
        b.add(ir.NODE_KINDS[kind](name, **_spatial_window(b)))
    return make


def _upsample(b: _GraphBuilder, name: str) -> None:
    factor = (b.draw(st.integers(1, 2)), b.draw(st.integers(1, 2)))
    b.add(ir.Upsample(name, scale_factor=factor, mode=b.draw(st.sampled_from(["nearest", "bilinear"]))))


def _add(b: _GraphBuilder, name: str) -> None:
    source = b.current
    other = source if b.draw(st.booleans()) else b.add(ir.ReLU(f"{name}_side"))
    b.add(ir.Add(name), [source, other])  # x + x is allowed: NIR forbids the duplicate edge


def _concat(b: _GraphBuilder, name: str) -> None:
    source = b.current
    axis = b.draw(st.integers(0, len(b.shape) - 1))
    if len(b.shape) == 1:
        other = b.add(ir.Linear(f"{name}_side", weight=b.array(b.draw(st.integers(1, 4)), b.shape[0])))
    elif axis == 0 and b.draw(st.booleans()):
        other = b.add(ir.Conv2d(f"{name}_side", weight=b.array(b.draw(st.integers(1, 3)), b.shape[0], 1, 1)))
    else:
        other = source
    b.add(ir.Concat(name, axis=axis), [source, other])


def _flatten(b: _GraphBuilder, name: str) -> None:
    rank = len(b.shape)
    start = b.draw(st.integers(0, rank - 1))
    end = b.draw(st.integers(start, rank - 1))
    b.add(ir.Flatten(name, start_dim=start - rank if b.draw(st.booleans()) else start,
                     end_dim=-1 if end == rank - 1 and b.draw(st.booleans()) else end))


def _linear(b: _GraphBuilder, name: str) -> None:
    out = b.draw(st.integers(1, 5))
    b.add(ir.Linear(name, weight=b.array(out, b.shape[0]), bias=b.array(out) if b.draw(st.booleans()) else None))


NODE_FACTORIES = {
    "Conv2d": _conv2d,
    "ConvTranspose2d": _conv_transpose2d,
    "AvgPool2d": _pool("AvgPool2d"),
    "SumPool2d": _pool("SumPool2d"),
    "MaxPool2d": _pool("MaxPool2d"),
    "Upsample": _upsample,
    "Add": _add,
    "Concat": _concat,
    "ReLU": lambda b, name: b.add(ir.ReLU(name)),
    "IF": lambda b, name: b.add(ir.IF(name, threshold=b.neuron_param(), r=b.neuron_param(),
                                      v_reset=b.neuron_param(), reset=b.reset())),
    "LIF": lambda b, name: b.add(ir.LIF(name, tau=b.neuron_param(positive=True), threshold=b.neuron_param(),
                                        r=b.neuron_param(), v_leak=b.neuron_param(), v_reset=b.neuron_param(),
                                        reset=b.reset())),
    "CubaLIF": lambda b, name: b.add(ir.CubaLIF(
        name, tau_syn=b.neuron_param(positive=True), tau_mem=b.neuron_param(positive=True),
        threshold=b.neuron_param(), r=b.neuron_param(), v_leak=b.neuron_param(), v_reset=b.neuron_param(),
        w_in=b.neuron_param(), reset=b.reset())),
    "SigmaDelta": lambda b, name: b.add(ir.SigmaDelta(name, threshold=np.abs(b.neuron_param()))),
    "Requantize": lambda b, name: b.add(ir.Requantize(name, shift=b.draw(st.integers(0, 12)),
                                                      bits=b.draw(st.integers(1, 8)))),
    "Flatten": _flatten,
    "Linear": _linear,
}
SPATIAL_KINDS = ("Conv2d", "ConvTranspose2d", "AvgPool2d", "SumPool2d", "MaxPool2d", "Upsample")
BOUNDARY_KINDS = ("Input", "Output")


@st.composite
def graphs_with_every_kind(draw) -> ir.Graph:
    """Input (C, H, W) -> every spatial and shape-agnostic kind, shuffled -> Flatten -> every kind
    that works on vectors, shuffled -> Output. Sizes are kept small so every window fits."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    builder = _GraphBuilder(draw, rng, (draw(st.integers(1, 3)), draw(st.integers(3, 6)), draw(st.integers(3, 6))))
    anywhere = [k for k in NODE_FACTORIES if k not in (*SPATIAL_KINDS, "Flatten", "Linear")]
    for stage, kinds in (("a", list(SPATIAL_KINDS) + anywhere), ("b", ["Linear", *anywhere])):
        for index, kind in enumerate(draw(st.permutations(kinds))):
            if len(builder.shape) == 3 and min(builder.shape[1:]) < 3:  # room for the next window
                builder.add(ir.Upsample(f"{stage}{index}_grow", scale_factor=2))
            NODE_FACTORIES[kind](builder, f"{stage}{index}_{kind.lower()}")
        if stage == "a":
            NODE_FACTORIES["Flatten"](builder, "a_flatten")  # random start/end dims
            if len(builder.shape) > 1:
                builder.add(ir.Flatten("flatten"))
    builder.add(ir.Output("output"))
    dt = draw(st.sampled_from([1e-4, 1e-3, 0.5]))
    return ir.Graph(builder.nodes, builder.edges, dt=dt, metadata={"source": "hypothesis"})


def test_every_kind_has_a_factory_and_a_nir_writer():
    assert set(NODE_FACTORIES) | set(BOUNDARY_KINDS) == set(ir.NODE_KINDS)
    assert set(NIR_WRITERS) == set(ir.NODE_KINDS)


def _nir_type_checks_it(graph: ir.Graph) -> bool:
    """nir 1.0.8's own type inference takes a conv's kernel height for both axes and ignores groups."""
    return all(node.weight.shape[2] == node.weight.shape[3] and node.groups == 1
               for node in graph if isinstance(node, ir.Conv2d))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=graphs_with_every_kind())
def test_round_trip_through_nir_is_lossless(graph):
    assert {node.kind for node in graph} == set(ir.NODE_KINDS)
    assert from_nir(to_nir(graph)).equals(graph)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "graph.nir"
        save_nir(graph, path)
        loaded = load_nir(path)
        assert loaded.equals(graph) and loaded.text() == graph.text()
        assert loaded.dt == graph.dt and loaded.metadata == graph.metadata
        if _nir_type_checks_it(graph):
            nir.read(path)  # other NIR tools load the file with nir's type checking switched on


def test_nir_write_read_preserves_node_metadata():
    """The extension relies on nir 1.0.8 keeping a node's metadata dict through write and read."""
    metadata = {"text": "ReLU", "number": 3, "real": 0.25, "array": np.arange(3, dtype=np.float32),
                "group": {"inner": "subtract"}}
    graph = nir.NIRGraph.from_list(nir.Scale(scale=np.ones(3, np.float32), metadata=metadata))
    with tempfile.TemporaryDirectory() as folder:
        nir.write(Path(folder) / "m.nir", graph)
        (scale,) = [n for n in nir.read(Path(folder) / "m.nir").nodes.values() if isinstance(n, nir.Scale)]
    assert scale.metadata["text"] == "ReLU" and scale.metadata["number"] == 3 and scale.metadata["real"] == 0.25
    np.testing.assert_array_equal(scale.metadata["array"], np.arange(3))
    assert scale.metadata["group"] == {"inner": "subtract"}


def _example_graph() -> ir.Graph:
    rng = np.random.default_rng(0)
    nodes = [
        ir.Input("x", shape=(2, 4, 4)),
        ir.Conv2d("conv", weight=rng.standard_normal((3, 2, 3, 3)), padding=1),
        ir.ReLU("relu"),
        ir.MaxPool2d("pool", kernel_size=2),
        ir.Upsample("up", scale_factor=2),
        ir.Concat("cat", axis=0),
        ir.Add("add"),
        ir.LIF("lif", tau=2e-4, threshold=np.full(6, 0.5, np.float32), reset="subtract"),
        ir.Output("y"),
    ]
    edges = [("x", "conv"), ("conv", "relu"), ("relu", "pool"), ("pool", "up"), ("up", "cat"), ("relu", "cat"),
             ("cat", "add"), ("cat", "add"), ("add", "lif"), ("lif", "y")]
    return ir.Graph(nodes, edges)


def test_how_other_nir_tools_see_the_extension(tmp_path):
    save_nir(_example_graph(), tmp_path / "g.nir")
    plain = nir.read(tmp_path / "g.nir")  # no spikestream involved
    kinds = {name: type(node).__name__ for name, node in plain.nodes.items()}
    assert kinds == {"x": "Input", "conv": "Conv2d", "relu": "Scale", "pool": "AvgPool2d", "up": "Conv2d",
                     "cat": "Scale", "cat.input0": "Conv2d", "cat.input1": "Conv2d", "add": "Scale",
                     "add.input0": "Scale", "add.input1": "Scale", "lif": "LIF", "y": "Output"}
    assert plain.metadata["spikestream.version"] == 1 and plain.metadata["spikestream.dt"] == ir.DEFAULT_DT
    assert plain.nodes["relu"].metadata["spikestream.kind"] == "ReLU"
    assert plain.nodes["lif"].metadata["spikestream.reset"] == "subtract"
    assert list(plain.nodes["up"].metadata["spikestream.params"]["scale_factor"]) == [2, 2]
    assert sorted(extension_kinds()) == ["Add", "Concat", "ConvTranspose2d", "MaxPool2d", "ReLU", "Requantize",
                                         "SigmaDelta", "Upsample"]


def test_channel_concat_adapters_compute_the_concat_under_nir_rules():
    """NIR sums the edges entering a node, so Σ adapter_i(x_i) must equal cat(x_0, x_1)."""
    graph = _example_graph()
    nir_graph = to_nir(graph)
    inputs = [torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)]
    summed = sum(F.conv2d(x, torch.as_tensor(nir_graph.nodes[f"cat.input{i}"].weight),
                          torch.as_tensor(nir_graph.nodes[f"cat.input{i}"].bias))
                 for i, x in enumerate(inputs))
    torch.testing.assert_close(summed, torch.cat(inputs, dim=1), rtol=0, atol=0)


def test_dt_is_stored_and_can_be_overridden(tmp_path):
    graph = ir.sequential((3,), [ir.IF("n", r=0.5)], dt=2e-3)
    save_nir(graph, tmp_path / "g.nir")
    assert load_nir(tmp_path / "g.nir").dt == 2e-3
    faster = load_nir(tmp_path / "g.nir", dt=1e-3)
    assert faster.dt == 1e-3
    np.testing.assert_allclose(faster.nodes["n"].r, 0.25)  # NIR's IF r is per second: gain = dt·r
    assert nir.read(tmp_path / "g.nir").nodes["n"].r[0] == pytest.approx(0.5 / 2e-3)


def test_foreign_fan_in_becomes_an_add():
    nir_graph = nir.NIRGraph(
        nodes={"in": nir.Input(input_type=np.array([2])),
               "a": nir.Affine(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32)),
               "b": nir.Linear(weight=2 * np.eye(2, dtype=np.float32)),
               "lif": nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
               "out": nir.Output(output_type=np.array([2]))},
        edges=[("in", "a"), ("in", "b"), ("a", "lif"), ("b", "lif"), ("lif", "out")])
    graph = from_nir(nir_graph)
    assert graph.nodes["lif.sum"].kind == "Add" and graph.predecessors("lif.sum") == ["a", "b"]
    assert graph.predecessors("lif") == ["lif.sum"]
    assert graph.dt == ir.DEFAULT_DT and graph.nodes["lif"].tau.shape == (2,)


def test_docs_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).parents[1] / "docs" / "nir.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/nir.md", "exec"), {})


# --- errors ---------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "absent.nir"
    with pytest.raises(NIRFormatError) as caught:
        load_nir(path)
    assert str(caught.value) == f"cannot read NIR file {str(path)!r}: no such file"


@pytest.mark.parametrize("damage", ["not hdf5", "truncated", "hdf5 without a graph"])
def test_corrupt_files_raise_one_clear_line(tmp_path, damage):
    path = tmp_path / "bad.nir"
    if damage == "not hdf5":
        path.write_text("this is not a NIR file\n")
    elif damage == "truncated":
        save_nir(_example_graph(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        with h5py.File(path, "w") as file:
            file.create_dataset("something", data=[1, 2, 3])
    with pytest.raises(ValueError) as caught:
        load_nir(path)
    message = str(caught.value)
    assert isinstance(caught.value, NIRFormatError)
    assert message.startswith(f"cannot read NIR file {str(path)!r}: ") and "\n" not in message


def test_unsupported_nir_node_names_it_and_lists_supported(tmp_path):
    nir_graph = nir.NIRGraph(
        nodes={"in": nir.Input(input_type=np.array([2])), "n3": nir.Delay(delay=np.ones(2)),
               "out": nir.Output(output_type=np.array([2]))},
        edges=[("in", "n3"), ("n3", "out")])
    nir.write(tmp_path / "delay.nir", nir_graph)
    with pytest.raises(NIRFormatError) as caught:
        load_nir(tmp_path / "delay.nir")
    assert isinstance(caught.value, ir.UnsupportedError)
    assert str(caught.value) == f"unsupported NIR node 'Delay' at 'n3'; supported: {', '.join(supported_nir_nodes())}"


# --- oracles ----------------------------------------------------------------------------------------


def _truncate_after(graph: ir.Graph, name: str) -> ir.Graph:
    """The graph from its input up to node ``name`` (a chain), with a new Output there."""
    keep = graph.order[: graph.order.index(name) + 1]
    nodes = [graph.nodes[n] for n in keep] + [ir.Output("probe")]
    edges = [(a, b) for a, b in graph.edges if b in keep] + [(name, "probe")]
    return ir.Graph(nodes, edges, dt=graph.dt)


def _assert_spikes_identical(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, what
    assert 0 < expected.sum() < expected.size, f"{what}: the oracle should spike, but not everywhere"
    mismatches = int((actual != expected).sum())
    assert mismatches == 0, f"{what}: {mismatches} of {expected.size} spikes differ"


def test_snntorch_leaky_cnn_spikes_identical(tmp_path):
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    generator = torch.manual_seed(3)
    channels, size = 2, 8
    hidden = snn.Leaky(beta=torch.rand(4, size, size) * 0.5 + 0.4, threshold=torch.rand(4, size, size) * 0.5 + 0.5,
                       reset_mechanism="zero", init_hidden=True)
    last = snn.Leaky(beta=torch.rand(10) * 0.5 + 0.4, threshold=torch.rand(10) * 0.5 + 0.5,
                     reset_mechanism="zero", init_hidden=True, output=True)
    network = torch.nn.Sequential(torch.nn.Conv2d(channels, 4, 3, padding=1), hidden, torch.nn.AvgPool2d(2),
                                  torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10), last)
    with torch.no_grad():
        network[0].weight.mul_(3)
        network[4].weight.mul_(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = export_to_nir(network, torch.rand(1, channels, size, size), ignore_dims=[0])
    nir.write(tmp_path / "snntorch.nir", exported)
    graph = load_nir(tmp_path / "snntorch.nir")
    assert [node.kind for node in graph] == ["Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Linear", "LIF",
                                             "Output"]

    x = torch.rand(T, 1, channels, size, size, generator=generator)
    hidden_spikes, output_spikes = [], []
    hidden.reset_mem()  # the export ran the network once; start from rest
    last.reset_mem()
    with torch.no_grad():
        for x_t in x:  # snnTorch's own step-by-step run
            spikes = hidden(network[0](x_t))
            hidden_spikes.append(spikes[0])
            output_spikes.append(network[5](network[4](network[3](network[2](spikes))))[0][0])
    _assert_spikes_identical(simulate(graph, x[:, 0]), torch.stack(output_spikes).numpy(), "output layer")
    hidden_name = graph.order[2]
    _assert_spikes_identical(simulate(_truncate_after(graph, hidden_name), x[:, 0]),
                             torch.stack(hidden_spikes).numpy(), "hidden layer")
    assert from_nir(exported).equals(graph)  # in-memory graphs (torch tensors inside) read the same


def test_snntorch_synaptic_spikes_identical(tmp_path):
    """Synaptic (CubaLIF) with per-neuron alpha, beta and threshold. ``reset_delay=False``: with
    snnTorch's default delayed reset, a Synaptic neuron that spiked has its membrane forced to 0 for
    the whole next step, input included, which is neither NIR's CubaLIF nor snnTorch's own Leaky."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    generator = torch.manual_seed(1)
    synaptic = snn.Synaptic(alpha=torch.rand(12) * 0.5 + 0.3, beta=torch.rand(12) * 0.5 + 0.4,
                            threshold=torch.rand(12) * 0.5 + 0.5, reset_mechanism="zero", init_hidden=True,
                            reset_delay=False)
    last = snn.Leaky(beta=torch.rand(5) * 0.5 + 0.4, threshold=torch.rand(5) * 0.5 + 0.5, reset_mechanism="zero",
                     init_hidden=True, output=True)
    network = torch.nn.Sequential(torch.nn.Linear(6, 12), synaptic, torch.nn.Linear(12, 5), last)
    with torch.no_grad():
        network[2].weight.mul_(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(tmp_path / "synaptic.nir", export_to_nir(network, torch.rand(1, 6), ignore_dims=[0]))
    graph = load_nir(tmp_path / "synaptic.nir")
    assert [node.kind for node in graph] == ["Input", "Linear", "CubaLIF", "Linear", "LIF", "Output"]

    x = torch.rand(T, 1, 6, generator=generator)
    synaptic.reset_mem()
    last.reset_mem()
    hidden_spikes, output_spikes = [], []
    with torch.no_grad():
        for x_t in x:
            spikes = synaptic(network[0](x_t))
            hidden_spikes.append(spikes[0])
            output_spikes.append(last(network[2](spikes))[0][0])
    _assert_spikes_identical(simulate(graph, x[:, 0]), torch.stack(output_spikes).numpy(), "output layer")
    _assert_spikes_identical(simulate(_truncate_after(graph, graph.order[2]), x[:, 0]),
                             torch.stack(hidden_spikes).numpy(), "CubaLIF layer")


def test_spikingjelly_cnn_spikes_identical(tmp_path):
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    generator = torch.manual_seed(0)
    channels, size = 2, 8
    network = torch.nn.Sequential(
        layer.Conv2d(channels, 4, 3, padding=1), neuron.LIFNode(tau=2.0, v_threshold=0.7), layer.AvgPool2d(2),
        layer.Flatten(), layer.Linear(4 * 4 * 4, 10), neuron.IFNode(v_threshold=0.8))
    with torch.no_grad():
        network[0].weight.mul_(3)
        network[4].weight.mul_(6)
    export_to_nir(network, torch.rand(1, channels, size, size), save_path=tmp_path / "spikingjelly.nir")
    graph = load_nir(tmp_path / "spikingjelly.nir")
    assert [node.kind for node in graph] == ["Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Linear", "IF",
                                             "Output"]
    np.testing.assert_allclose(graph.nodes[graph.order[6]].r, 1.0)  # NIR r = 1/dt is one step's full input

    functional.set_step_mode(network, "m")  # SpikingJelly's own multi-step run
    functional.reset_net(network)
    x = torch.rand(T, 1, channels, size, size, generator=generator)
    with torch.no_grad():
        hidden_spikes = network[:2](x)[:, 0].numpy()
        functional.reset_net(network)
        output_spikes = network(x)[:, 0].numpy()
    _assert_spikes_identical(simulate(graph, x[:, 0]), output_spikes, "output layer")
    _assert_spikes_identical(simulate(_truncate_after(graph, graph.order[2]), x[:, 0]), hidden_spikes,
                             "hidden layer")
