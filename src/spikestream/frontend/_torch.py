"""PyTorch front end: trace an ``nn.Module`` with ``torch.fx`` and map it onto the IR.

Each traced call is looked up in one of two registries, filled by decorators that reject
duplicates: ``MODULE_HANDLERS`` (keyed by module class, for ``call_module`` nodes) and
``FUNCTION_HANDLERS`` (keyed by function, for ``call_function`` and ``call_method`` nodes; a method
call ``x.view(...)`` is keyed by ``torch.Tensor.view``). These dicts are the one list of what is
supported; error messages are built from them.

The module is read with eval-mode semantics: batch norms use their running statistics and are
folded into the preceding convolution or linear layer; dropout is skipped. ``input_shape`` is per
sample, so torch dimensions (which count the batch) are shifted down by one.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from spikestream import ir
from spikestream.frontend._batchnorm import fold_batchnorm
from spikestream.ir import Graph, Shape, UnsupportedError

ModuleHandler = Callable[["_Importer", fx.Node, nn.Module], object]
FunctionHandler = Callable[["_Importer", fx.Node], object]

MODULE_HANDLERS: dict[type[nn.Module], ModuleHandler] = {}
FUNCTION_HANDLERS: dict[Callable, FunctionHandler] = {}


def module_handler(*module_types: type[nn.Module]) -> Callable[[ModuleHandler], ModuleHandler]:
    """Register a handler for ``call_module`` nodes of exactly these module classes."""
    def register(handler: ModuleHandler) -> ModuleHandler:
        for module_type in module_types:
            if module_type in MODULE_HANDLERS:
                raise ValueError(f"module handler for {module_type.__name__} is registered twice")
            MODULE_HANDLERS[module_type] = handler
        return handler
    return register


def function_handler(*functions: Callable) -> Callable[[FunctionHandler], FunctionHandler]:
    """Register a handler for calls of these functions (methods as ``torch.Tensor.name``)."""
    def register(handler: FunctionHandler) -> FunctionHandler:
        for function in functions:
            if function in FUNCTION_HANDLERS:
                raise ValueError(f"function handler for {function_name(function)} is registered twice")
            FUNCTION_HANDLERS[function] = handler
        return handler
    return register


def function_name(function: Callable) -> str:
    """How a supported function is named in messages: ``F.relu``, ``torch.cat``, ``Tensor.view``."""
    name = function.__name__
    if getattr(torch.Tensor, name, None) is function:
        return f"Tensor.{name}"
    module = getattr(function, "__module__", None) or ""
    if module == "torch.nn.functional":
        return f"F.{name}"
    if module in ("_operator", "operator"):
        return f"operator.{name}"
    if module == "builtins":
        return name
    return f"torch.{name}"


def supported_modules() -> list[str]:
    return sorted(t.__name__ for t in MODULE_HANDLERS)


def supported_functions() -> list[str]:
    return sorted(function_name(f) for f in FUNCTION_HANDLERS)


# --- tracing and the import loop ----------------------------------------------------------------


@dataclass(frozen=True)
class _BatchSize:
    """The value of ``x.size(0)`` or ``x.shape[0]``: only useful as the batch entry of a view."""


@dataclass(frozen=True)
class _TensorShape:
    """The value of ``x.shape``: only ``x.shape[0]`` is understood."""


@dataclass
class _Importer:
    """State of one import: the IR built so far and what each fx node evaluated to.

    ``values`` maps an fx node to an IR node name (a tensor) or to a plain Python value.
    """

    nodes: dict[str, ir.Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    shapes: dict[str, Shape] = field(default_factory=dict)
    values: dict[fx.Node, object] = field(default_factory=dict)

    def add(self, node: ir.Node, inputs: list[str]) -> str:
        """Append an IR node fed by ``inputs`` (IR names) and return its name."""
        self.shapes[node.name] = tuple(node.infer_shape([self.shapes[name] for name in inputs]))
        self.nodes[node.name] = node
        self.edges.extend((source, node.name) for source in inputs)
        return node.name

    def tensor(self, fx_node: fx.Node, arg) -> str:
        """The IR name of a tensor argument; anything else is an unsupported use."""
        value = self.values.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(value, str):
            raise UnsupportedError(f"{_describe(fx_node)}: argument {arg!r} is not a tensor from the "
                                   f"network input (constants and parameters used in forward are not supported)")
        return value

    def shape(self, name: str) -> Shape:
        return self.shapes[name]

    def consumers(self, name: str) -> set[fx.Node]:
        """fx nodes that read IR tensor ``name`` (pass-throughs such as Dropout look through)."""
        aliases = {n for n, v in self.values.items() if v == name}
        return {user for n in aliases for user in n.users} - aliases


def _describe(fx_node: fx.Node) -> str:
    if fx_node.op == "call_module":
        return f"module {fx_node.target!r}"
    return f"call {fx_node.name!r}"


def _ir_name(fx_node: fx.Node) -> str:
    return fx_node.name.replace(".", "_")


def from_torch(module: nn.Module, input_shape: tuple[int, ...]) -> Graph:
    """Trace ``module`` with ``torch.fx`` and return the equivalent IR graph (eval-mode semantics).

    ``input_shape`` is one sample's shape without the batch dimension: ``(C, H, W)`` or ``(F,)``.
    Node names are the fx node names (dots replaced by underscores). Raises ``UnsupportedError``
    naming the module or function, where it is, and what is supported.
    """
    input_shape = tuple(int(s) for s in input_shape)
    try:
        traced = fx.symbolic_trace(module)
    except Exception as error:  # fx raises many types (TraceError, TypeError, ...) for dynamic code
        raise UnsupportedError(f"cannot trace {type(module).__name__} with torch.fx: "
                               f"{str(error).splitlines()[0]}") from error
    importer = _Importer()
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedError(f"forward must take exactly one tensor, got {[n.name for n in placeholders]}")
    for fx_node in traced.graph.nodes:
        importer.values[fx_node] = _import_node(importer, traced, fx_node, input_shape)
    return Graph(importer.nodes.values(), importer.edges)


def _import_node(importer: _Importer, traced: fx.GraphModule, fx_node: fx.Node, input_shape: Shape):
    if fx_node.op == "placeholder":
        return importer.add(ir.Input(_ir_name(fx_node), shape=input_shape), [])
    if fx_node.op == "output":
        result = fx_node.args[0]
        return importer.add(ir.Output(_ir_name(fx_node)), [importer.tensor(fx_node, result)])
    if fx_node.op == "call_module":
        submodule = traced.get_submodule(fx_node.target)
        handler = MODULE_HANDLERS.get(type(submodule))
        if handler is None:
            raise UnsupportedError(f"unsupported module {type(submodule).__name__} at {fx_node.target!r}; "
                                   f"supported: {', '.join(supported_modules())}")
        return handler(importer, fx_node, submodule)
    if fx_node.op in ("call_function", "call_method"):
        function = getattr(torch.Tensor, fx_node.target, None) if fx_node.op == "call_method" else fx_node.target
        handler = FUNCTION_HANDLERS.get(function)
        if handler is None:
            shown = f"Tensor.{fx_node.target}" if fx_node.op == "call_method" else _callable_name(fx_node.target)
            raise UnsupportedError(f"unsupported function {shown} at {fx_node.name!r}; "
                                   f"supported: {', '.join(supported_functions())}")
        return handler(importer, fx_node)
    raise UnsupportedError(f"unsupported fx operation {fx_node.op} ({fx_node.target}) at {fx_node.name!r}: "
                           "parameters and buffers may only be used inside supported modules")


def _callable_name(target) -> str:
    try:
        return function_name(target)
    except AttributeError:
        return repr(target)


def _argument(fx_node: fx.Node, index: int, name: str, default=None):
    if len(fx_node.args) > index:
        return fx_node.args[index]
    return fx_node.kwargs.get(name, default)


def _sample_dim(fx_node: fx.Node, dim: int, rank: int) -> int:
    """Map a torch dimension (batch is dim 0) to a per-sample one, counted from 0."""
    dim = int(dim)
    if dim < 0:
        dim += rank + 1
    if not 1 <= dim <= rank:
        raise UnsupportedError(f"{_describe(fx_node)}: dimension {dim} is the batch dimension or out of range "
                               f"for a per-sample rank of {rank}; only per-sample dimensions are supported")
    return dim - 1


def _array(tensor: torch.Tensor | None) -> np.ndarray | None:
    return None if tensor is None else tensor.detach().cpu().numpy().astype(np.float32)


# --- modules ----------------------------------------------------------------------------------------


@module_handler(nn.Conv2d)
def _conv2d(importer: _Importer, fx_node: fx.Node, conv: nn.Conv2d) -> str:
    padding = _conv_padding(fx_node, conv)
    node = ir.Conv2d(_ir_name(fx_node), weight=_array(conv.weight), bias=_array(conv.bias), stride=conv.stride,
                     padding=padding, dilation=conv.dilation, groups=conv.groups)
    return importer.add(node, [importer.tensor(fx_node, fx_node.args[0])])


def _conv_padding(fx_node: fx.Node, conv: nn.Conv2d) -> tuple[int, int]:
    """Numeric padding; 'valid' is 0 and 'same' is d·(k−1)/2 when that is a whole number."""
    if conv.padding_mode != "zeros":
        raise UnsupportedError(f"module {fx_node.target!r}: Conv2d needs zero padding, not "
                               f"padding_mode={conv.padding_mode!r}")
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        if any(t % 2 for t in total):
            raise UnsupportedError(f"module {fx_node.target!r}: padding='same' with an even kernel pads "
                                   "asymmetrically, which the IR cannot express")
        return (total[0] // 2, total[1] // 2)
    return tuple(conv.padding)


@module_handler(nn.ConvTranspose2d)
def _conv_transpose2d(importer: _Importer, fx_node: fx.Node, conv: nn.ConvTranspose2d) -> str:
    if conv.padding_mode != "zeros" or len(fx_node.args) > 1 or fx_node.kwargs:
        raise UnsupportedError(f"module {fx_node.target!r}: ConvTranspose2d needs zero padding and no "
                               "output_size argument")
    node = ir.ConvTranspose2d(_ir_name(fx_node), weight=_array(conv.weight), bias=_array(conv.bias),
                              stride=conv.stride, padding=conv.padding, output_padding=conv.output_padding,
                              dilation=conv.dilation, groups=conv.groups)
    return importer.add(node, [importer.tensor(fx_node, fx_node.args[0])])


@module_handler(nn.Linear)
def _linear(importer: _Importer, fx_node: fx.Node, linear: nn.Linear) -> str:
    node = ir.Linear(_ir_name(fx_node), weight=_array(linear.weight), bias=_array(linear.bias))
    return importer.add(node, [importer.tensor(fx_node, fx_node.args[0])])


@module_handler(nn.ReLU)
def _relu_module(importer: _Importer, fx_node: fx.Node, module: nn.Module) -> str:
    return importer.add(ir.ReLU(_ir_name(fx_node)), [importer.tensor(fx_node, fx_node.args[0])])


@module_handler(nn.AvgPool2d)
def _avg_pool(importer: _Importer, fx_node: fx.Node, pool: nn.AvgPool2d) -> str:
    padded = np.any(np.asarray(pool.padding) != 0)
    if pool.ceil_mode or pool.divisor_override is not None or (padded and not pool.count_include_pad):
        raise UnsupportedError(f"module {fx_node.target!r}: AvgPool2d supports floor mode, no divisor_override "
                               "and, with padding, count_include_pad=True")
    node = ir.AvgPool2d(_ir_name(fx_node), kernel_size=pool.kernel_size, stride=pool.stride or pool.kernel_size,
                        padding=pool.padding)
    return importer.add(node, [importer.tensor(fx_node, fx_node.args[0])])


@module_handler(nn.MaxPool2d)
def _max_pool(importer: _Importer, fx_node: fx.Node, pool: nn.MaxPool2d) -> str:
    if pool.ceil_mode or pool.return_indices or np.any(np.asarray(pool.dilation) != 1):
        raise UnsupportedError(f"module {fx_node.target!r}: MaxPool2d supports floor mode, dilation 1 and "
                               "no returned indices")
    node = ir.MaxPool2d(_ir_name(fx_node), kernel_size=pool.kernel_size, stride=pool.stride or pool.kernel_size,
                        padding=pool.padding)
    return importer.add(node, [importer.tensor(fx_node, fx_node.args[0])])


@module_handler(nn.Flatten)
def _flatten_module(importer: _Importer, fx_node: fx.Node, flatten: nn.Flatten) -> str:
    return _add_flatten(importer, fx_node, fx_node.args[0], flatten.start_dim, flatten.end_dim)


@module_handler(nn.Upsample)
def _upsample(importer: _Importer, fx_node: fx.Node, upsample: nn.Upsample) -> str:
    source = importer.tensor(fx_node, fx_node.args[0])
    factors = upsample.scale_factor
    factors = (factors, factors) if np.isscalar(factors) else tuple(factors or ())
    integral = len(factors) == 2 and all(float(f) == int(f) and f >= 1 for f in factors)
    if upsample.size is not None or not integral or upsample.mode not in ("nearest", "bilinear") \
            or upsample.align_corners:
        raise UnsupportedError(f"module {fx_node.target!r}: Upsample supports an integer scale_factor with mode "
                               f"'nearest' or 'bilinear' (align_corners=False), not size={upsample.size}, "
                               f"scale_factor={upsample.scale_factor}, mode={upsample.mode!r}")
    node = ir.Upsample(_ir_name(fx_node), scale_factor=tuple(int(f) for f in factors), mode=upsample.mode)
    return importer.add(node, [source])


@module_handler(nn.BatchNorm2d, nn.BatchNorm1d)
def _batchnorm(importer: _Importer, fx_node: fx.Node, bn: nn.modules.batchnorm._BatchNorm) -> str:
    """Fold into the layer that produced the input; that layer must feed nothing else."""
    source = importer.tensor(fx_node, fx_node.args[0])
    layer = importer.nodes[source]
    foldable = (ir.Conv2d, ir.ConvTranspose2d) if isinstance(bn, nn.BatchNorm2d) else (ir.Linear,)
    if not isinstance(layer, foldable):
        raise UnsupportedError(f"unsupported module {type(bn).__name__} at {fx_node.target!r}: a batch norm must "
                               f"directly follow {' or '.join(k.kind for k in foldable)} (it is folded into "
                               f"its weights), but it follows {layer.kind} {source!r}")
    if importer.consumers(source) != {fx_node}:
        raise UnsupportedError(f"unsupported module {type(bn).__name__} at {fx_node.target!r}: the output of "
                               f"{source!r} is also used elsewhere, so the batch norm cannot be folded into it")
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedError(f"unsupported module {type(bn).__name__} at {fx_node.target!r}: eval mode needs "
                               "running statistics (track_running_stats=True)")
    channels = bn.num_features
    gamma = _array(bn.weight) if bn.affine else np.ones(channels, np.float32)
    beta = _array(bn.bias) if bn.affine else np.zeros(channels, np.float32)
    folded = fold_batchnorm(layer, _array(bn.running_mean), _array(bn.running_var), gamma, beta, bn.eps)
    importer.nodes[source] = folded
    return source


@module_handler(nn.Dropout, nn.Dropout2d, nn.Identity)
def _skip(importer: _Importer, fx_node: fx.Node, module: nn.Module) -> str:
    """Identity at inference: the output is the input tensor."""
    return importer.tensor(fx_node, fx_node.args[0])


# --- functions and methods -------------------------------------------------------------------------


@function_handler(F.relu, torch.relu, torch.Tensor.relu)
def _relu_function(importer: _Importer, fx_node: fx.Node) -> str:
    return importer.add(ir.ReLU(_ir_name(fx_node)), [importer.tensor(fx_node, fx_node.args[0])])


@function_handler(operator.add, torch.add, torch.Tensor.add)
def _add(importer: _Importer, fx_node: fx.Node) -> str:
    if _argument(fx_node, 2, "alpha", 1) != 1:
        raise UnsupportedError(f"{_describe(fx_node)}: add with alpha != 1 is not supported")
    sources = [importer.tensor(fx_node, arg) for arg in fx_node.args[:2]]
    return importer.add(ir.Add(_ir_name(fx_node)), sources)


@function_handler(torch.cat)
def _cat(importer: _Importer, fx_node: fx.Node) -> str:
    sources = [importer.tensor(fx_node, arg) for arg in _argument(fx_node, 0, "tensors")]
    rank = len(importer.shape(sources[0]))
    axis = _sample_dim(fx_node, _argument(fx_node, 1, "dim", 0), rank)
    if len(sources) == 1:
        return sources[0]
    return importer.add(ir.Concat(_ir_name(fx_node), axis=axis), sources)


@function_handler(torch.flatten, torch.Tensor.flatten)
def _flatten_function(importer: _Importer, fx_node: fx.Node) -> str:
    start, end = _argument(fx_node, 1, "start_dim", 0), _argument(fx_node, 2, "end_dim", -1)
    return _add_flatten(importer, fx_node, fx_node.args[0], start, end)


def _add_flatten(importer: _Importer, fx_node: fx.Node, arg, start_dim: int, end_dim: int) -> str:
    source = importer.tensor(fx_node, arg)
    rank = len(importer.shape(source))
    start, end = _sample_dim(fx_node, start_dim, rank), _sample_dim(fx_node, end_dim, rank)
    return importer.add(ir.Flatten(_ir_name(fx_node), start_dim=start, end_dim=end), [source])


@function_handler(torch.Tensor.view, torch.Tensor.reshape, torch.reshape)
def _view_flat(importer: _Importer, fx_node: fx.Node) -> str:
    """``x.view(B, -1)`` and friends: only reshaping each sample to a flat vector is supported."""
    source = importer.tensor(fx_node, fx_node.args[0])
    sizes = fx_node.args[1:] if fx_node.op == "call_method" else fx_node.args[1:2]
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = tuple(importer.values.get(s, s) if isinstance(s, fx.Node) else s for s in sizes)
    features = int(np.prod(importer.shape(source)))
    batch_ok = len(sizes) == 2 and (isinstance(sizes[0], _BatchSize) or sizes[0] == -1)
    if not batch_ok or sizes[1] not in (-1, features):
        raise UnsupportedError(f"{_describe(fx_node)}: only a reshape of each sample to a flat vector, "
                               f"like x.view(x.size(0), -1), is supported, not sizes {sizes}")
    rank = len(importer.shape(source))
    return importer.add(ir.Flatten(_ir_name(fx_node), start_dim=0, end_dim=rank - 1), [source])


@function_handler(torch.Tensor.size)
def _size(importer: _Importer, fx_node: fx.Node) -> _BatchSize:
    importer.tensor(fx_node, fx_node.args[0])
    if _argument(fx_node, 1, "dim") != 0:
        raise UnsupportedError(f"{_describe(fx_node)}: only x.size(0), the batch size, is supported")
    return _BatchSize()


@function_handler(getattr)
def _getattr(importer: _Importer, fx_node: fx.Node) -> _TensorShape:
    importer.tensor(fx_node, fx_node.args[0])
    if fx_node.args[1] != "shape":
        raise UnsupportedError(f"{_describe(fx_node)}: only x.shape[0] is supported, not .{fx_node.args[1]}")
    return _TensorShape()


@function_handler(operator.getitem)
def _getitem(importer: _Importer, fx_node: fx.Node) -> _BatchSize:
    container, index = fx_node.args
    if not isinstance(importer.values.get(container), _TensorShape) or index != 0:
        raise UnsupportedError(f"{_describe(fx_node)}: indexing is only supported as x.shape[0]")
    return _BatchSize()
