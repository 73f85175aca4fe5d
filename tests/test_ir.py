"""Graph IR: shape inference against torch's own layers, verification errors, text form, registry."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream import ir


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(
    cin=st.integers(1, 4), cout=st.integers(1, 4), k=st.integers(1, 4), stride=st.integers(1, 3),
    padding=st.integers(0, 2), dilation=st.integers(1, 2), size=st.integers(6, 13), transpose=st.booleans(),
)
def test_convolution_shapes_match_torch(cin, cout, k, stride, padding, dilation, size, transpose):
    if transpose:
        output_padding = min(stride, dilation) - 1
        node = ir.ConvTranspose2d("c", weight=_random((cin, cout, k, k)), stride=stride, padding=padding,
                                  output_padding=output_padding, dilation=dilation)
        layer = torch.nn.ConvTranspose2d(cin, cout, k, stride, padding, output_padding, dilation=dilation)
    else:
        if size + 2 * padding < dilation * (k - 1) + 1:
            return
        node = ir.Conv2d("c", weight=_random((cout, cin, k, k)), stride=stride, padding=padding,
                         dilation=dilation)
        layer = torch.nn.Conv2d(cin, cout, k, stride, padding, dilation)
    expected = tuple(layer(torch.zeros(1, cin, size, size)).shape[1:])
    assert node.infer_shape([(cin, size, size)]) == expected


@pytest.mark.parametrize("kind, torch_layer", [
    (ir.AvgPool2d, torch.nn.AvgPool2d(3, 2, 1)),
    (ir.MaxPool2d, torch.nn.MaxPool2d(3, 2, 1)),
    (ir.SumPool2d, torch.nn.AvgPool2d(3, 2, 1)),
])
def test_pool_shapes_match_torch(kind, torch_layer):
    node = kind("p", kernel_size=3, stride=2, padding=1)
    assert node.infer_shape([(3, 11, 9)]) == tuple(torch_layer(torch.zeros(1, 3, 11, 9)).shape[1:])


def test_chain_infers_every_shape():
    graph = ir.sequential((1, 16, 16), [
        ir.Conv2d("c1", weight=_random((4, 1, 3, 3)), bias=np.zeros(4), padding=1),
        ir.ReLU("r1"), ir.MaxPool2d("p1"), ir.Upsample("up", scale_factor=2), ir.AvgPool2d("p2", kernel_size=4),
        ir.Flatten("flat"), ir.Linear("fc", weight=_random((10, 64))), ir.LIF("lif", tau=2e-4, threshold=np.ones(10)),
    ])
    assert graph.shapes["p1"] == (4, 8, 8)
    assert graph.shapes["up"] == (4, 16, 16)
    assert graph.shapes["flat"] == (64,)
    assert graph.output_shape == (10,)
    assert graph.synaptic_layers() == ["c1", "fc"]
    assert graph.neuron_layers() == ["lif"]


def test_join_nodes_and_edge_order():
    nodes = [ir.Input("x", shape=(2, 4, 4)), ir.ReLU("a"), ir.MaxPool2d("b", kernel_size=1),
             ir.Concat("cat", axis=0), ir.Add("sum"), ir.Output("y")]
    edges = [("x", "a"), ("x", "b"), ("b", "cat"), ("a", "cat"), ("a", "sum"), ("b", "sum"), ("cat", "out_pad")]
    with pytest.raises(ir.IRError, match="unknown node 'out_pad'"):
        ir.Graph(nodes, edges)
    edges = [*edges[:-1], ("sum", "y")]
    with pytest.raises(ir.IRError, match=r"cat .* output is not used"):
        ir.Graph(nodes, edges)
    graph = ir.Graph([*nodes[:3], ir.Concat("cat", axis=0), ir.Output("y")],
                     [("x", "a"), ("x", "b"), ("b", "cat"), ("a", "cat"), ("cat", "y")])
    assert graph.predecessors("cat") == ["b", "a"]  # input order is edge order
    assert graph.output_shape == (4, 4, 4)


@pytest.mark.parametrize("build, message", [
    (lambda: ir.Conv2d("c", weight=np.zeros((2, 3, 3))), "Conv2d weight must be"),
    (lambda: ir.Conv2d("c", weight=np.zeros((4, 1, 3, 3)), groups=3), "groups=3 must divide C_out=4"),
    (lambda: ir.Linear("l", weight=np.zeros((2, 3)), bias=np.zeros(3)), "bias must have shape"),
    (lambda: ir.LIF("n", tau=-1.0), "tau must be positive"),
    (lambda: ir.IF("n", reset="soft"), "reset must be one of"),
    (lambda: ir.Upsample("u", mode="cubic"), "mode must be"),
    (lambda: ir.SigmaDelta("s", threshold=-0.1), "threshold must be >= 0"),
    (lambda: ir.Linear("l", weight=np.full((2, 2), np.nan)), "must be finite"),
])
def test_nodes_check_their_parameters(build, message):
    with pytest.raises(ir.IRError, match=message):
        build()


def test_graph_errors_name_the_problem():
    conv = ir.Conv2d("c", weight=_random((4, 3, 3, 3)))
    expected = r"type mismatch: c \(Conv2d\) expects 3 input channels, got shape \(1, 8, 8\)"
    with pytest.raises(ir.IRError, match=expected):
        ir.sequential((1, 8, 8), [conv])
    with pytest.raises(ir.IRError, match="per-channel"):
        ir.sequential((4,), [ir.IF("n", threshold=np.ones(3))])
    with pytest.raises(ir.IRError, match="duplicate node name"):
        ir.sequential((4,), [ir.ReLU("input")])
    nodes = [ir.Input("x", shape=(3,)), ir.ReLU("a"), ir.ReLU("b"), ir.Output("y")]
    with pytest.raises(ir.IRError, match="cycle"):
        ir.Graph(nodes, [("x", "a"), ("a", "b"), ("b", "a"), ("b", "y")])


def test_text_form_is_deterministic_and_tracks_parameters():
    def build(scale):
        return ir.sequential((1, 8, 8), [ir.Conv2d("c", weight=_random((2, 1, 3, 3)) * scale), ir.ReLU("r")])
    assert build(1.0).text() == build(1.0).text()
    assert build(1.0).text() != build(2.0).text()
    assert build(1.0).equals(build(1.0)) and not build(1.0).equals(build(2.0))
    assert "c = Conv2d(weight[2x1x3x3]#" in build(1.0).text()


def test_parameters_are_read_only():
    node = ir.Linear("l", weight=np.ones((2, 2)))
    with pytest.raises(ValueError):
        node.weight[0, 0] = 5.0


def test_registry_rejects_duplicates_and_lists_every_kind():
    with pytest.raises(ValueError, match="registered twice"):
        ir.register_node(ir.ReLU)
    assert {"Input", "Output", "Conv2d", "Linear", "AvgPool2d", "MaxPool2d", "Flatten", "Upsample",
            "ConvTranspose2d", "Add", "Concat", "ReLU", "IF", "LIF", "SigmaDelta"} <= set(ir.NODE_KINDS)


def test_ir_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, spikestream.ir; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
