"""The graph: named nodes, ordered edges, shape inference, verification and a deterministic text form."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise

from spikestream.ir._errors import IRError
from spikestream.ir._nodes import Input, NeuronNode, Node, Output, Shape, SynapticNode
from spikestream.ir._time import DEFAULT_DT


class Graph:
    """A directed acyclic graph of IR nodes.

    Edges are ``(source, target)`` name pairs; the order in which a target's incoming edges are
    listed is the order of its inputs (it matters for Concat). ``dt`` (seconds) is the one time
    step used to discretise continuous neuron parameters (see ``spikestream.ir._time``).
    Construction infers every shape and verifies the graph; an invalid graph cannot exist.
    """

    def __init__(self, nodes: Iterable[Node], edges: Iterable[tuple[str, str]], dt: float = DEFAULT_DT,
                 metadata: Mapping[str, str] | None = None):
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            if not isinstance(node, Node):
                raise IRError(f"graph nodes must be IR nodes, not {type(node).__name__}")
            if node.name in self.nodes:
                raise IRError(f"duplicate node name {node.name!r}")
            self.nodes[node.name] = node
        self.edges: tuple[tuple[str, str], ...] = tuple((str(a), str(b)) for a, b in edges)
        if not dt > 0:
            raise IRError(f"dt must be a positive number of seconds, not {dt!r}")
        self.dt = float(dt)
        self.metadata: dict[str, str] = dict(metadata or {})
        self._inputs: dict[str, list[str]] = {name: [] for name in self.nodes}
        self._outputs: dict[str, list[str]] = {name: [] for name in self.nodes}
        for source, target in self.edges:
            for end in (source, target):
                if end not in self.nodes:
                    raise IRError(f"edge {source} -> {target} names unknown node {end!r}")
            self._inputs[target].append(source)
            self._outputs[source].append(target)
        self.order: tuple[str, ...] = self._topological_order()
        self.shapes: dict[str, Shape] = {}
        self.verify()

    # --- structure -------------------------------------------------------------------------------
    def _topological_order(self) -> tuple[str, ...]:
        pending = {name: len(set(ins)) for name, ins in self._inputs.items()}
        ready = [name for name in self.nodes if pending[name] == 0]
        order: list[str] = []
        while ready:
            name = ready.pop(0)
            order.append(name)
            for target in dict.fromkeys(self._outputs[name]):
                pending[target] -= 1
                if pending[target] == 0:
                    ready.append(target)
        if len(order) != len(self.nodes):
            cycle = sorted(set(self.nodes) - set(order))
            raise IRError(f"graph has a cycle through {cycle}; recurrent graphs are not supported")
        return tuple(order)

    def predecessors(self, name: str) -> list[str]:
        return list(self._inputs[name])

    def successors(self, name: str) -> list[str]:
        return list(self._outputs[name])

    @property
    def input_names(self) -> list[str]:
        return [n for n in self.order if isinstance(self.nodes[n], Input)]

    @property
    def output_names(self) -> list[str]:
        return [n for n in self.order if isinstance(self.nodes[n], Output)]

    @property
    def input_shape(self) -> Shape:
        """Shape of the single input (error if there is not exactly one)."""
        (name,) = self._single("input", self.input_names)
        return self.shapes[name]

    @property
    def output_shape(self) -> Shape:
        (name,) = self._single("output", self.output_names)
        return self.shapes[name]

    @staticmethod
    def _single(what: str, names: list[str]) -> list[str]:
        if len(names) != 1:
            raise IRError(f"expected exactly one {what} node, found {len(names)}: {names}")
        return names

    def synaptic_layers(self) -> list[str]:
        """Names of nodes with weights, in execution order (the layers of a Trace)."""
        return [n for n in self.order if isinstance(self.nodes[n], SynapticNode)]

    def neuron_layers(self) -> list[str]:
        return [n for n in self.order if isinstance(self.nodes[n], NeuronNode)]

    def __iter__(self) -> Iterator[Node]:
        return (self.nodes[name] for name in self.order)

    def __len__(self) -> int:
        return len(self.nodes)

    # --- checking -------------------------------------------------------------------------------
    def verify(self) -> None:
        """Check arities, inputs and outputs, then infer every shape (raises IRError)."""
        if not self.input_names:
            raise IRError("graph has no Input node")
        if not self.output_names:
            raise IRError("graph has no Output node")
        shapes: dict[str, Shape] = {}
        for name in self.order:
            node = self.nodes[name]
            sources = self._inputs[name]
            if node.arity is None:
                if len(sources) < 2:
                    raise IRError(f"{name} ({node.kind}) needs two or more inputs, has {len(sources)}")
            elif len(sources) != node.arity:
                raise IRError(f"{name} ({node.kind}) needs {node.arity} input(s), has {len(sources)}: {sources}")
            if not isinstance(node, Output) and not self._outputs[name]:
                raise IRError(f"{name} ({node.kind}) output is not used; connect it or add an Output node")
            shapes[name] = tuple(int(s) for s in node.infer_shape([shapes[s] for s in sources]))
        self.shapes = shapes

    # --- editing (graphs are immutable: edits build new graphs) ----------------------------------
    def with_changes(self, nodes: Iterable[Node] | None = None, edges: Iterable[tuple[str, str]] | None = None,
                     **kwargs) -> Graph:
        return Graph(self.nodes.values() if nodes is None else nodes, self.edges if edges is None else edges,
                     dt=kwargs.pop("dt", self.dt), metadata=kwargs.pop("metadata", self.metadata))

    def replace_node(self, node: Node) -> Graph:
        """A new graph with the node of the same name swapped for ``node``."""
        if node.name not in self.nodes:
            raise IRError(f"no node named {node.name!r}")
        return self.with_changes(nodes=[node if n.name == node.name else n for n in self.nodes.values()])

    def insert_after(self, name: str, node: Node) -> Graph:
        """A new graph with single-input ``node`` placed on every edge leaving ``name``."""
        edges = [(node.name if a == name else a, b) for a, b in self.edges]
        edges.append((name, node.name))
        return self.with_changes(nodes=[*self.nodes.values(), node], edges=edges)

    # --- comparison and text --------------------------------------------------------------------
    def equals(self, other: Graph) -> bool:
        return (self.order == other.order and self.edges == other.edges and self.dt == other.dt
                and all(self.nodes[n].equals(other.nodes[n]) for n in self.order))

    def text(self) -> str:
        """Deterministic, compact text: one line per node in execution order."""
        lines = [f"graph dt={self.dt:g}"]
        for name in self.order:
            node = self.nodes[name]
            sources = ", ".join(self._inputs[name])
            lines.append(f"{name} = {node.describe()}({sources}) -> {self.shapes[name]}")
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, input {self.input_names}, output {self.output_names})"


def sequential(input_shape: Shape, layers: Iterable[Node], dt: float = DEFAULT_DT) -> Graph:
    """A chain graph: Input -> layers... -> Output (node names must be unique)."""
    layers = list(layers)
    nodes: list[Node] = [Input("input", shape=tuple(input_shape)), *layers, Output("output")]
    edges = [(a.name, b.name) for a, b in pairwise(nodes)]
    return Graph(nodes, edges, dt=dt)
