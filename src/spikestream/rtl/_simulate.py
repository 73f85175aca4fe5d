"""Entry point of the simulation subprocess: ``python -m spikestream.rtl._simulate CONFIG.json``.

``rtl.verify`` runs this in a child process with a timeout, so that a hung or crashed simulator never
takes the caller down; the cocotb runner builds the Verilog with the chosen simulator and runs the
testbench module ``spikestream.rtl._testbench``. Exit status 0: built, simulated and every output
matched; otherwise the runner's status (the log says why).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

TESTBENCH_TOP = "spikestream_testbench"  # module of testbench_top.v


def main(argv: list[str]) -> int:
    from cocotb_tools.runner import get_runner

    config_path = Path(argv[0])
    config = json.loads(config_path.read_text())
    runner = get_runner(config["simulator"])
    build_dir = Path(config["build_dir"])
    start = time.perf_counter()
    runner.build(sources=[config["verilog"], config["testbench_top"]], hdl_toplevel=TESTBENCH_TOP,
                 build_dir=build_dir, build_args=config.get("build_args", []), defines=config["defines"],
                 timescale=("1ns", "1ps"), always=True)
    built = time.perf_counter()
    runner.test(test_module="spikestream.rtl._testbench", hdl_toplevel=TESTBENCH_TOP, build_dir=build_dir,
                test_dir=build_dir, extra_env={"SPIKESTREAM_RTL_CONFIG": str(config_path.resolve())},
                timescale=("1ns", "1ps"))
    Path(config["timing"]).write_text(json.dumps({"build_s": built - start, "run_s": time.perf_counter() - built}))
    results = json.loads(Path(config["results"]).read_text()) if Path(config["results"]).exists() else {}
    images = results.get("images", [])
    return 0 if images and all(image["match"] for image in images) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
