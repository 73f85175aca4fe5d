"""cocotb testbench of a generated accelerator (run by ``rtl.verify`` under Icarus or Verilator).

The configuration file named by ``SPIKESTREAM_RTL_CONFIG`` (JSON) gives the stimulus file (npz with
``beats`` (N, beats) uint64 input-stream payloads and ``expected`` (N, outputs) int64 reference outputs),
the clock period and where to write the results. Images go in one at a time: all beats of an image, then
its outputs, then the next image, so every image's latency is its own. The testbench drives and samples
at falling edges (inputs settle before the rising edge that transfers them) and waits on events, not on
every cycle, so that Python costs little simulation time. Each layer's busy interval is timed from the
edges of ``layer_busy``.

Results (JSON): per image its outputs, whether they equal the reference, its latency in cycles (from the
rising edge that accepts the first input beat to the one that accepts the last output) and each layer's
busy cycles.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

CONFIG_VARIABLE = "SPIKESTREAM_RTL_CONFIG"


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


class _BusyMonitor:
    """Records, per layer, the cycles ``layer_busy[i]`` is high during the current image."""

    def __init__(self, dut, layers: int, period_ns: float):
        self.dut, self.layers, self.period = dut, layers, period_ns
        self.cycles = [0] * layers
        self._since = [None] * layers

    def reset(self) -> None:
        self.cycles = [0] * self.layers

    async def run(self) -> None:
        previous = 0
        while True:
            await self.dut.layer_busy.value_change
            now = get_sim_time("ns")
            value = int(self.dut.layer_busy.value)
            for layer in range(self.layers):
                was, is_ = (previous >> layer) & 1, (value >> layer) & 1
                if is_ and not was:
                    self._since[layer] = now
                elif was and not is_ and self._since[layer] is not None:
                    self.cycles[layer] += round((now - self._since[layer]) / self.period)
            previous = value


@cocotb.test()
async def classify_images(dut):
    config = json.loads(Path(os.environ[CONFIG_VARIABLE]).read_text())
    vectors = np.load(config["vectors"])
    beats, expected = vectors["beats"], vectors["expected"]
    period = float(config["clock_ns"])
    layers, value_bits = int(config["layers"]), int(config["output_value_bits"])

    dut.rst.value = 1  # the clock runs in the simulation top (testbench_top.v)
    dut.pixels__valid.value = 0
    dut.pixels__payload.value = 0
    dut.outputs__ready.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    monitor = _BusyMonitor(dut, layers, period)
    cocotb.start_soon(monitor.run())

    results = []
    for image in range(len(beats)):
        monitor.reset()
        first_accept = None
        index = 0
        while index < beats.shape[1]:  # offer beats at falling edges; ready is registered state only
            await FallingEdge(dut.clk)
            dut.pixels__payload.value = int(beats[image, index])
            dut.pixels__valid.value = 1
            if int(dut.pixels__ready.value):
                if first_accept is None:
                    first_accept = get_sim_time("ns") + period / 2  # the next rising edge takes it
                index += 1
        await FallingEdge(dut.clk)
        dut.pixels__valid.value = 0

        outputs = []
        last_accept = None
        while len(outputs) < expected.shape[1]:
            if not int(dut.outputs__valid.value):
                await RisingEdge(dut.outputs__valid)
            await FallingEdge(dut.clk)
            while int(dut.outputs__valid.value) and len(outputs) < expected.shape[1]:
                payload = int(dut.outputs__payload.value)
                outputs.append(_signed(payload & ((1 << value_bits) - 1), value_bits))
                last_accept = get_sim_time("ns") + period / 2
                await FallingEdge(dut.clk)
        await ClockCycles(dut.clk, 2)  # let the output buffer be released before the next image
        results.append({
            "outputs": outputs,
            "match": bool(np.array_equal(np.asarray(outputs), expected[image])),
            "latency_cycles": round((last_accept - first_accept) / period),
            "layer_cycles": list(monitor.cycles),
        })
        Path(config["results"]).write_text(json.dumps({"images": results}))  # partial results survive a timeout
    mismatches = [i for i, r in enumerate(results) if not r["match"]]
    assert not mismatches, f"outputs differ from the integer reference on images {mismatches}"
