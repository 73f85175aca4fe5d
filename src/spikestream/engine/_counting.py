"""Exact operation counts for one synaptic layer and one step of input events.

Definitions (DESIGN.md §4):
- events: non-zero values on the layer's input wire (graded and negative values included).
- synops: Σ over input events of the event's fan-out, the number of synapses leaving that input
  element. For a convolution this is C_out/groups × (kernel taps that land inside the output),
  i.e. the boundary-exact form of events × C_out × k_h × k_w / (s_h × s_w); for a linear layer
  it is events × out_features. Zero-valued weights still count: a synop is a connection.
- dense MACs: the equivalent ANN layer's multiply-accumulates for one pass.
- work: what a processing element that owns an output channel, or an output tile, must do:
  for every output neuron, the number of input events arriving over *non-zero* weights
  (hardware skips zero weights). ``channel_work`` sums it per output channel, ``tile_work`` per
  spatial tile of the output; ``input_channel_work`` is synops grouped by input channel (the
  work of a PE that owns input channels and fans their events out).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikestream import ir
from spikestream.engine._ops import DENSE_OPS
from spikestream.engine._sparse_kernels import count_event_rows


class LayerCount(NamedTuple):
    events: int
    synops: int
    channel_work: Tensor  # (C_out,) int64
    input_channel_work: Tensor  # (C_in,) or (in_features,) int64
    tile_work: Tensor  # (tiles_y, tiles_x) int64


def dense_macs(node: ir.SynapticNode, input_shape: ir.Shape, output_shape: ir.Shape) -> int:
    """Multiply-accumulates of the equivalent ANN layer for one pass."""
    if isinstance(node, ir.Conv2d):
        return int(node.weight[0].size * math.prod(output_shape))  # (C_in/g · k_h · k_w) per output
    if isinstance(node, ir.ConvTranspose2d):
        return int(node.weight[0].size * input_shape[0] * math.prod(input_shape[1:]))
    if isinstance(node, ir.Linear):
        return int(node.weight.size)
    raise ir.UnsupportedError(f"no MAC count for {node.kind}")


def _connectivity_op(node: ir.SynapticNode, weight: Tensor):
    """The layer's linear map with given weights and no bias (to count connections)."""
    op = DENSE_OPS[node.kind]
    return lambda x: op(node, {"weight": weight}, [x])


_NO_WORK = torch.zeros(0, dtype=torch.int64)  # work arrays left empty by count_rows
_NO_WORK_ROWS = _NO_WORK.numpy()  # count_event_rows: no per-input-channel work wanted


class LayerCounter:
    """Precomputes per-layer constants once; ``count`` then costs about one layer evaluation."""

    def __init__(self, node: ir.SynapticNode, input_shape: ir.Shape, output_shape: ir.Shape,
                 tile: tuple[int, int] = (16, 16), device: torch.device | str = "cpu"):
        self.node = node
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)
        self.tile = tile
        self.dense_macs = dense_macs(node, input_shape, output_shape)
        weight = torch.tensor(np.array(node.weight), device=device)
        # fan-out of each input element: d/dx Σ f_ones(x) counts the connections leaving x.
        probe = torch.zeros((1, *input_shape), device=device, requires_grad=True)
        _connectivity_op(node, torch.ones_like(weight))(probe).sum().backward()
        self.fanout = probe.grad[0].detach().to(torch.float64)  # (*input_shape)
        self._arrivals = _connectivity_op(node, (weight != 0).to(weight.dtype))
        self._fanout_by_block: dict[tuple[int, int], np.ndarray] = {}  # see _fanout_rows

    def count(self, wire: Tensor, work: bool = True) -> LayerCount:
        """Counts for one step; ``wire``: (1, *input_shape) input events of this layer.
        ``work=False`` skips the per-channel and per-tile work (events and synops only)."""
        mask = (wire != 0).to(torch.float32)
        events = int(mask.sum().item())
        per_input = mask[0].to(torch.float64) * self.fanout
        synops = round(per_input.sum().item())
        input_channel_work = per_input.reshape(per_input.shape[0], -1).sum(1).round().to(torch.int64)
        if not work:
            empty = torch.zeros(0, dtype=torch.int64)
            return LayerCount(events, synops, empty, input_channel_work, empty)
        arrivals = self._arrivals(mask)[0].to(torch.float64)  # (C_out, H, W) or (F,) events per neuron
        if arrivals.dim() == 3:
            channel_work = arrivals.sum((1, 2))
            tile_work = F.avg_pool2d(arrivals.sum(0)[None, None], self.tile, self.tile, ceil_mode=True,
                                     divisor_override=1)[0, 0]
        else:
            channel_work = arrivals
            tile_work = arrivals.sum().reshape(1, 1)
        return LayerCount(events, synops, channel_work.round().to(torch.int64), input_channel_work,
                          tile_work.round().to(torch.int64))

    def count_rows(self, positions: np.ndarray, values: np.ndarray, block: tuple[int, int] = (1, 1)) -> LayerCount:
        """Events and synops of a sparse wire: ``values[i]`` is what pixel ``positions[i]`` sends, or,
        with a ``block`` (b_y, b_x), what every pixel of the block at ``positions[i]`` on the grid
        coarsened by it sends. The work arrays are left empty (count a dense wire when they are needed)."""
        events, synops = count_event_rows(positions, values, block[0] * block[1],
                                          self._fanout_rows(block), _NO_WORK_ROWS)
        return LayerCount(events, synops, _NO_WORK, _NO_WORK, _NO_WORK)

    def _fanout_rows(self, block: tuple[int, int]) -> np.ndarray:
        """Fan-out as rows over the grid coarsened by ``block``, each summed over its block's pixels:
        (H·W / block, C), or (H·W / block, 1) when every channel has the same (a small table that
        stays in cache while sparse rows are counted); built on first use per block."""
        if block not in self._fanout_by_block:
            channels, height, width = self.fanout.shape
            fanout = self.fanout.reshape(channels, height // block[0], block[0], width // block[1], block[1])
            fanout = fanout.sum((2, 4)).permute(1, 2, 0).reshape(-1, channels)
            if bool((fanout == fanout[:, :1]).all()):
                fanout = fanout[:, :1]
            self._fanout_by_block[block] = np.ascontiguousarray(fanout.cpu().numpy().round().astype(np.int32))
        return self._fanout_by_block[block]

    @property
    def tiles_shape(self) -> tuple[int, int]:
        if len(self.output_shape) != 3:
            return (1, 1)
        return (math.ceil(self.output_shape[1] / self.tile[0]), math.ceil(self.output_shape[2] / self.tile[1]))
