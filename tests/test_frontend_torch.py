"""PyTorch front end: the imported graph computes what the torch module computes (eval mode)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikestream import ir
from spikestream.engine import simulate
from spikestream.frontend import (
    fold_batchnorm,
    from_torch,
    function_handler,
    module_handler,
    supported_functions,
    supported_modules,
)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}  # float32 conv/linear with folded batch norm


def _randomise_batchnorm(module: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial running statistics and affine parameters, so folding is really exercised."""
    for bn in module.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            channels = bn.num_features
            bn.running_mean.copy_(torch.rand(channels, generator=generator) * 2 - 1)
            bn.running_var.copy_(torch.rand(channels, generator=generator) * 1.5 + 0.5)
            if bn.affine:
                bn.weight.data.copy_(torch.rand(channels, generator=generator) + 0.5)
                bn.bias.data.copy_(torch.rand(channels, generator=generator) - 0.5)


def _run_graph(graph: ir.Graph, samples: torch.Tensor) -> np.ndarray:
    """The graph on a batch of samples. These graphs are stateless, so each sample can be one time
    step of ``simulate``: (N, *input_shape) -> (N, *output_shape)."""
    return simulate(graph, samples)


def _assert_imports_exactly(module: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> ir.Graph:
    generator = torch.Generator().manual_seed(seed)
    _randomise_batchnorm(module, generator)
    module.eval()
    graph = from_torch(module, input_shape)
    samples = torch.randn(4, *input_shape, generator=generator)
    with torch.no_grad():
        expected = module(samples).numpy()
    np.testing.assert_allclose(_run_graph(graph, samples), expected, **TOLERANCE)
    return graph


class ResidualCNN(nn.Module):
    """ReLU CNN with batch norm, pooling, a residual add, a concatenation, flatten and linear."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.branch = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.branch_bn = nn.BatchNorm2d(8)
        self.side = nn.Conv2d(8, 4, 1)
        self.pool = nn.AvgPool2d(2)
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(12 * 4 * 4, 10)

    def forward(self, x):
        x = self.features(x)
        x = F.relu(self.branch_bn(self.branch(x)) + x)
        x = torch.cat([x, self.side(x)], dim=1)
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))


def test_residual_cnn_matches_torch():
    graph = _assert_imports_exactly(ResidualCNN(), (3, 16, 16))
    kinds = [node.kind for node in graph]
    assert "BatchNorm2d" not in kinds and kinds.count("Conv2d") == 3  # both batch norms were folded
    assert {"Add", "Concat", "MaxPool2d", "AvgPool2d", "Flatten", "Linear", "ReLU"} <= set(kinds)


def test_node_names_come_from_fx_and_are_deterministic():
    module = ResidualCNN().eval()
    first, second = from_torch(module, (3, 16, 16)), from_torch(module, (3, 16, 16))
    assert first.text() == second.text()
    assert first.order[:4] == ("x", "features_0", "features_2", "features_3")  # features.1 (BN) folded away
    assert first.input_shape == (3, 16, 16) and first.output_shape == (10,)


class Decoder(nn.Module):
    """Transposed conv (grouped) with batch norm, upsampling, padded average pooling, x.size(0) view."""

    def __init__(self, mode: str):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.bn = nn.BatchNorm2d(6)
        self.resize = nn.Upsample(scale_factor=2, mode=mode)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.head = nn.Linear(6 * 8 * 8, 5)
        self.head_bn = nn.BatchNorm1d(5)
        self.skip = nn.Identity()

    def forward(self, x):
        x = self.pool(self.resize(self.bn(self.up(self.skip(x)))))
        x = x.view(x.size(0), -1)
        return self.head_bn(self.head(x)).relu()


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_decoder_matches_torch(mode):
    graph = _assert_imports_exactly(Decoder(mode), (4, 4, 4), seed=1)
    assert graph.nodes["resize"].mode == mode


class FlatNet(nn.Module):
    def forward(self, x):
        y = torch.add(torch.relu(x), x.reshape(x.shape[0], -1))
        return y.flatten(1)


def test_vector_input_and_function_forms():
    _assert_imports_exactly(FlatNet(), (7,))


@pytest.mark.parametrize("make_layer, channels", [
    (lambda: nn.Conv2d(4, 6, 3, groups=2, bias=False), 6),
    (lambda: nn.ConvTranspose2d(4, 6, 2, groups=2), 6),
    (lambda: nn.Linear(5, 3), 3),
])
def test_batchnorm_folds_into_the_layer_before_it(make_layer, channels):
    layer = make_layer()
    bn = nn.BatchNorm1d(channels) if isinstance(layer, nn.Linear) else nn.BatchNorm2d(channels)
    graph = _assert_imports_exactly(nn.Sequential(layer, bn), (5,) if isinstance(layer, nn.Linear) else (4, 5, 5))
    assert [node.kind for node in graph] == ["Input", type(layer).__name__, "Output"]
    assert graph.nodes["_0"].bias is not None  # the batch norm's shift became the bias


def test_fold_batchnorm_formula():
    """W' = W·γ/√(σ²+ε) and b' = (b − μ)·γ/√(σ²+ε) + β, per output channel."""
    layer = ir.Linear("fc", weight=[[1.0, 2.0], [3.0, 4.0]], bias=[0.5, -1.0])
    folded = fold_batchnorm(layer, mean=[1.0, 2.0], var=[3.0, 3.0], gamma=[2.0, 4.0], beta=[0.0, 1.0], eps=1.0)
    # scale = γ/√(σ²+ε) = [1, 2]
    np.testing.assert_allclose(folded.weight, [[1.0, 2.0], [6.0, 8.0]])
    np.testing.assert_allclose(folded.bias, [(0.5 - 1.0) * 1 + 0.0, (-1.0 - 2.0) * 2 + 1.0])


def test_unsupported_module_names_type_location_and_supported_list():
    module = nn.Sequential()
    module.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.GELU())
    with pytest.raises(ir.UnsupportedError) as caught:
        from_torch(module, (1, 8, 8))
    message = str(caught.value)
    assert message == f"unsupported module GELU at 'features.3'; supported: {', '.join(supported_modules())}"
    assert message.startswith("unsupported module GELU at 'features.3'; supported: AvgPool2d, BatchNorm1d, ")
    assert "\n" not in message


def test_unsupported_function_names_it_and_lists_supported():
    class Sigmoid(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(ir.UnsupportedError) as caught:
        from_torch(Sigmoid(), (3,))
    assert str(caught.value) == (f"unsupported function torch.sigmoid at 'sigmoid'; "
                                 f"supported: {', '.join(supported_functions())}")
    assert "F.relu" in supported_functions() and "Tensor.view" in supported_functions()


def test_batchnorm_must_follow_a_conv():
    module = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(2))
    with pytest.raises(ir.UnsupportedError, match=r"BatchNorm2d at '1'.*must directly follow Conv2d"):
        from_torch(module, (2, 4, 4))


def test_batchnorm_cannot_fold_into_a_conv_that_feeds_something_else():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    with pytest.raises(ir.UnsupportedError, match="also used elsewhere"):
        from_torch(Shared().eval(), (2, 4, 4))


def test_flattening_the_batch_dimension_is_rejected():
    class FlattenAll(nn.Module):
        def forward(self, x):
            return torch.flatten(x)

    with pytest.raises(ir.UnsupportedError, match="batch dimension"):
        from_torch(FlattenAll(), (2, 3))


def test_registries_reject_duplicates():
    with pytest.raises(ValueError, match="Conv2d is registered twice"):
        module_handler(nn.Conv2d)(lambda importer, fx_node, module: None)
    with pytest.raises(ValueError, match=r"torch\.cat is registered twice"):
        function_handler(torch.cat)(lambda importer, fx_node: None)
