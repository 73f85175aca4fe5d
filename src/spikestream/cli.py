"""Command line: parse arguments, call one library function, print. ``spikestream <command> --help``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import traceback

from spikestream import __version__
from spikestream._progress import clear_position, position, set_quiet
from spikestream.errors import InputError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def _tile(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[-1]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"tile must look like 16 or 16x16, not {text!r}") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"tile sides must be positive, not {text!r}")
    return height, width


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoding", default="sigma-delta",
                        help="direct, rate, radix, latency, frame-delta or sigma-delta (default)")
    parser.add_argument("--threshold", type=float, default=0.05, help="sigma-delta threshold θ (default 0.05)")
    parser.add_argument("--steps", type=int, default=None, help="time steps per frame for spiking encodings")
    parser.add_argument("--backend", default="dense", help="execution backend (default: dense)")
    parser.add_argument("--pipeline", action="store_true",
                        help="sparse backend: run two frames at once on two threads (same outputs, more frames/s)")
    parser.add_argument("--keyframe", type=int, default=None, metavar="K", help="a keyframe every K frames")
    parser.add_argument("--tile", type=_tile, default=(16, 16), help="output tile for per-tile work, e.g. 16x16")


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("region masking of the input deltas (spikestream.masking)")
    group.add_argument("--mask", default="none",
                       help="none (default), static (training-set heatmap), dynamic (MGNet), previous (the "
                            "previous frame's detections) or union (static ∪ previous ∪ MGNet)")
    group.add_argument("--keep", type=float, default=0.4,
                       help="share of regions that send their deltas, in (0, 1] (default 0.4: 60%% masked)")
    group.add_argument("--mask-region", type=int, default=8, metavar="R", help="region side in pixels (default 8)")
    group.add_argument("--mask-refresh", type=int, default=None, metavar="N",
                       help="the whole frame passes every N frames (default: only the first)")


def _mask_config(args):
    from spikestream.masking import MaskConfig

    config = MaskConfig(kind=args.mask, keep=args.keep, region=args.mask_region,  # checks every option
                        refresh_every=args.mask_refresh)
    return None if config.kind == "none" else config


def _add_hardware_options(parser: argparse.ArgumentParser, target: str | None) -> None:
    group = parser.add_argument_group("hardware model (spikestream.hw)")
    group.add_argument("--target", default=target,
                       help="fpga, neuromorphic or sensor" + (f" (default {target})" if target else
                                                               " (default: no hardware simulation)"))
    group.add_argument("--schedule", default="kwbs",
                       help="PE-array schedule: static, round-robin, kwbs (default), adaptive-kwbs, oracle, ideal")
    group.add_argument("--device", default="XC7Z035", help="FPGA device: XC7Z020, XC7Z035 (default), XCVU13P")
    group.add_argument("--pes", type=int, default=16, help="processing elements of the FPGA array (default 16)")
    group.add_argument("--units", default="auto", help="work unit per PE: auto, channel, input_channel, tile")
    group.add_argument("--profile-every", type=int, default=None, metavar="K",
                       help="KWBS re-profiles every K frames when the trace marks no keyframes (default 8)")
    group.add_argument("--balance-threshold", type=float, default=None,
                       help="adaptive KWBS re-profiles when a frame's lower bound / makespan falls below this "
                            "(default 0.9)")
    group.add_argument("--no-steal", dest="steal", action="store_false",
                       help="adaptive KWBS without run-time work stealing (the re-profiling rule alone)")
    group.add_argument("--neuron-update", default="touched",
                       help="FPGA neuron updates: touched (event-driven, default) or all (dense pass)")
    group.add_argument("--chip", default="loihi2", help="neuromorphic chip: loihi or loihi2 (default)")
    group.add_argument("--chips", type=int, default=1, help="neuromorphic chips available (default 1)")
    group.add_argument("--sensor", default="cis-45nm", help="image sensor preset (default cis-45nm)")
    group.add_argument("--adc-bits", type=int, default=None, help="conventional ADC bits (default: the preset's)")
    group.add_argument("--link-format", default="auto", help="in-sensor link format: bitmap, aer or auto (default)")


def _add_dask_options(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help=f"{when}local Dask worker processes, one thread each (default: one per CPU core)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help=f"{when}run on this Dask scheduler (e.g. tcp://host:8786) instead of local workers; "
                             "the workers must see the same files")


def _hardware_options(args):
    from spikestream.hw import HardwareOptions

    if args.target is None:
        return None
    return HardwareOptions(target=args.target, schedule=args.schedule, device=args.device,
                           processing_elements=args.pes, units=args.units, profile_every=args.profile_every,
                           balance_threshold=args.balance_threshold, steal=args.steal,
                           neuron_update=args.neuron_update,
                           chip=args.chip, chips=args.chips, sensor=args.sensor, adc_bits=args.adc_bits,
                           link_format=args.link_format)


def main_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spikestream", description="Spiking neural networks on video.")
    parser.add_argument("--version", action="version", version=f"spikestream {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("info", help="version, devices, and where data is found")

    run = commands.add_parser("run", help="stream a video through a model and write report.json")
    run.add_argument("video", nargs="+",
                     help="a video file, or a .npy array of frames (N, H, W) or (N, C, H, W); several files, a "
                          "folder or a quoted glob ('videos/*.avi') run in parallel, one report each and a summary")
    run.add_argument("--model", required=True, help="a .nir file or a zoo model name")
    run.add_argument("--out", required=True, help="output folder (report.json, trace.npz)")
    run.add_argument("--frames", type=int, default=None, help="process at most this many frames")
    _add_run_options(run)
    _add_mask_options(run)
    _add_hardware_options(run, target=None)
    _add_dask_options(run, "several videos: ")

    sweep = commands.add_parser("sweep", help="run a grid of run jobs (models x videos x encodings x thresholds x "
                                              "masks x targets x schedules) on Dask: one table and plots")
    sweep.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file ([grid] axes, [fixed] parameters)")
    sweep.add_argument("--out", default=None, help="output folder (default out/<sweep file name>)")
    _add_dask_options(sweep, "")

    simulate = commands.add_parser("simulate", help="run a saved trace on a hardware model (FPGA PE array, "
                                                    "neuromorphic cores, in-sensor first layer)")
    simulate.add_argument("--trace", required=True, help="a trace.npz written by run or demo")
    simulate.add_argument("--out", required=True, help="output folder (report.json, report.html, PNG plots)")
    _add_hardware_options(simulate, target="fpga")

    demo = commands.add_parser("demo", help="segment moving people in vtest.avi with a sigma-delta network; "
                                            "writes report.json, report.html and an annotated video")
    demo.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--frames", type=int, default=None,
                      help="at most this many frames (default: the 195 test frames of vtest.avi; 60 synthetic "
                           "frames when the video cannot be had)")
    _add_run_options(demo)

    bench = commands.add_parser("bench", help="time eager/compiled PyTorch, dense and sparse sigma-delta, "
                                "snnTorch and SpikingJelly on the same frames")
    bench.add_argument("--model", default="seg-motion", help="zoo model name (default seg-motion)")
    bench.add_argument("--video", default="vtest.avi", help="a video path or a sample video name")
    bench.add_argument("--frames", type=int, default=300)
    bench.add_argument("--threshold", type=float, default=0.05)
    bench.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    bench.add_argument("--no-external", action="store_true", help="skip the snnTorch and SpikingJelly rows")
    bench.add_argument("--device", default="cpu", help="cpu or cuda (PyTorch and dense rows)")
    bench.add_argument("--rounds", type=int, default=3,
                       help="timed passes per row, rows taking turns; each row keeps its fastest (default 3)")
    bench.add_argument("--out", default="out/bench", help="output folder (report.json)")

    compile_ = commands.add_parser("compile", help="compile a model to verified Verilog for an FPGA (radix SNN "
                                                   "accelerator): resources, latency, Pareto plot")
    compile_.add_argument("model", help="a zoo model name or a .nir file (float models are quantized with "
                                        "Fashion-MNIST calibration images)")
    compile_.add_argument("--device", default="xc7z020", help="FPGA device: xc7z020 (default), xc7z035, xcvu13p")
    compile_.add_argument("--parallel", default="auto",
                          help="parallelism, e.g. pixels=13,kernel_rows=3,channels=8,units=1,neurons=32,"
                               "fc2.neurons=10; 'auto' (default): the fastest configuration whose estimate stays "
                               "under 70%% of the device")
    compile_.add_argument("--bits", type=int, default=4, help="radix bits T of every activation (default 4)")
    compile_.add_argument("--weight-bits", type=int, default=4, help="signed weight bits (default 4)")
    compile_.add_argument("--verify", type=int, default=0, metavar="N",
                          help="simulate N Fashion-MNIST test images and compare with the integer reference")
    compile_.add_argument("--simulator", default="icarus", help="icarus (default) or verilator")
    compile_.add_argument("--synth", action="store_true", help="synthesize with Yosys (synth_xilinx -family xc7)")
    compile_.add_argument("--clock-mhz", type=float, default=200.0, help="clock for latency and power (default 200)")
    compile_.add_argument("--max-luts", type=float, default=None, help="LUT budget of the automatic choice")
    compile_.add_argument("--accuracy-images", type=int, default=1000,
                          help="test images for the quantized model's accuracy (default 1000; 0 skips)")
    compile_.add_argument("--out", required=True, help="output folder (Verilog, testbench, report.json, pareto.png)")

    train = commands.add_parser("train", help="retrain a zoo model and write its safetensors weights")
    train.add_argument("model", help="zoo model name")
    train.add_argument("--out", default=None, help="weights file (default: the shipped file in the package)")
    train.add_argument("--seed", type=int, default=0)
    return parser


def _run_options(args):
    from spikestream.jobs import RunOptions

    if args.threshold < 0:
        raise InputError(f"--threshold must be >= 0, not {args.threshold}")
    if args.frames is not None and args.frames < 1:
        raise InputError(f"--frames must be >= 1, not {args.frames}")
    mask = _mask_config(args) if hasattr(args, "mask") else None
    return RunOptions(encoding=args.encoding, threshold=args.threshold, steps=args.steps, backend=args.backend,
                      frames=args.frames, keyframe_every=args.keyframe, tile=args.tile, mask=mask,
                      pipeline=args.pipeline)


def _print_summary(report: dict, out: str) -> None:
    totals = report["totals"]
    print(f"{report['command']}: {report['frames']} frames of {report['input']} through {report['model']} "
          f"({report['encoding']}) in {report['wall_s']:.2f} s = {report['fps']:.1f} frames/s")
    print(f"{'layer':<24}{'events':>14}{'synops':>16}{'dense MACs':>16}{'activity':>10}")
    for layer in report["layers"]:
        activity = layer["synops"] / layer["dense_macs"] if layer["dense_macs"] else 0.0
        print(f"{layer['name']:<24}{layer['events']:>14,}{layer['synops']:>16,}{layer['dense_macs']:>16,}"
              f"{activity:>10.3f}")
    print(f"{'total':<24}{totals['events']:>14,}{totals['synops']:>16,}{totals['dense_macs']:>16,}"
          f"{totals['activity']:>10.3f}")
    print(f"report: {out}/report.json")


def _print_masking(report: dict) -> None:
    masking = report.get("masking")
    if not masking:
        return
    line = (f"mask {masking['kind']} ({masking['source']}): keep {masking['keep']:g} of {masking['grid'][0]}x"
            f"{masking['grid'][1]} regions of {masking['region']} px, {masking['masked_fraction'] * 100:.1f}% held "
            f"over {masking['frames']} frames")
    if "mask_generator" in masking:
        generator = masking["mask_generator"]
        line += f"; MGNet {generator['synops_per_frame']:,.0f} synops/frame"
    print(line)
    total = masking.get("with_mask_generator")
    if total:
        print(f"  with MGNet: {total['fps']:,.1f} frames/s, latency {total['latency_s'] * 1e3:.3f} ms, "
              f"{total['energy_j_per_frame'] * 1e3:.4g} mJ/frame, EDP {total['edp']:.3g} J·s")


def _print_hardware(report: dict) -> None:
    hardware = report.get("hardware")
    if not hardware:
        return
    balance = hardware.get("balance_ratio")
    print(f"{hardware['target']}" + (f" ({hardware['schedule']})" if hardware.get("schedule") else "")
          + f": {hardware['fps']:,.1f} frames/s, latency {hardware['latency_s'] * 1e3:.3f} ms, "
          f"{hardware['energy_j_per_frame'] * 1e3:.4g} mJ/frame, EDP {hardware['edp']:.3g} J·s"
          + (f", balance ratio {balance:.3f}" if balance is not None else ""))
    for precision in ("fp32", "int8"):
        entry = report["energy"][precision]
        compute, memory = entry["compute_only"], entry["memory_inclusive"]
        print(f"  {precision}: SNN/ANN energy {compute['snn_over_ann']:.3f} compute-only, "
              f"{memory['snn_over_ann']:.3f} memory-inclusive; break-even activity "
              f"{compute['break_even_activity']:.3g} / {memory['break_even_activity']:.3g} "
              f"(trace activity {entry['activity']:.3g})")
    if "sensor" in report:
        sensor = report["sensor"]
        print(f"  sensor: bandwidth {sensor['bandwidth_reduction']:.1f}x lower, energy "
              f"{sensor['energy_reduction']:.2f}x lower than the conventional pipeline")


def _print_compile(report: dict, out: str) -> None:
    rtl, hardware = report["rtl"], report["hardware"]
    source = "measured" if rtl["latency_measured"] else "model"
    print(f"compile: {report['model']} -> {rtl['verilog']} ({rtl['parallel']})")
    print(f"latency {rtl['latency_cycles']:,.0f} cycles ({source}) = {hardware['latency_s'] * 1e6:,.1f} us at "
          f"{hardware['clock_mhz']:g} MHz")
    if "verification" in rtl:
        check = rtl["verification"]
        print(f"simulation ({check['simulator']}): {check['bit_exact_images']}/{check['images']} images bit-exact "
              "with the integer reference")
    if "resources" in rtl:
        used = rtl["resources"]
        print(f"resources: {used['luts']:,} LUT, {used['flip_flops']:,} FF, {used['bram36']:g} BRAM36, "
              f"{used['dsp']} DSP; fits: {rtl['fits']}; power {rtl['power']['total_w'] * 1e3:.0f} mW")
    if "accuracy" in report:
        print(f"accuracy: integer reference {report['accuracy']['integer_reference']:.4f} on "
              f"{report['accuracy']['images']} test images")
    print(f"report: {out}/report.json, Pareto plot: {rtl['pareto_plot']}")


def _is_batch(videos: list[str]) -> bool:
    from spikestream.distributed import is_batch

    return is_batch(videos)


def _run_batch(args) -> int:
    """``run`` over several videos; exit status 1 when some of them failed (each is in summary.csv)."""
    from spikestream.distributed import run_batch

    summary = run_batch(args.video, args.model, args.out, _run_options(args), _hardware_options(args),
                        workers=args.workers, scheduler=args.scheduler)
    print(f"run: {summary['videos']} videos through {summary['model']}: {summary['ok']} ok, {summary['failed']} "
          f"failed ({summary['computed']} run now, {summary['reused']} already done) in {summary['wall_s']:.1f} s")
    print(f"{'video':<32}{'frames':>8}{'frames/s':>10}{'activity':>10}  status")
    for row in summary["rows"]:
        ok = row["status"] == "ok"
        print(f"{row['video'].rsplit('/', 1)[-1]:<32}{row['frames'] if ok else '':>8}"
              f"{format(row['fps'], '.1f') if ok else '':>10}{format(row['activity'], '.3f') if ok else '':>10}  "
              + ("ok" if ok else f"error: {row['error']}"))
    print(f"summary: {args.out}/summary.json, {summary['table']}")
    return 1 if summary["failed"] else 0


def _run_sweep(args) -> int:
    """``sweep``; exit status 1 when some cells failed (their errors are in the table)."""
    from spikestream.distributed import run_sweep

    summary = run_sweep(args.sweep, args.out, workers=args.workers, scheduler=args.scheduler)
    print(f"sweep {summary['name']}: {summary['cells']} cells: {summary['ok']} ok, {summary['failed']} failed "
          f"({summary['computed']} run now, {summary['reused']} already done) in {summary['wall_s']:.1f} s")
    for failure in summary["failed_cells"][:10]:
        print(f"  cell {failure['key']}: {failure['error']}")
    print(f"table: {', '.join(summary['table'])}")
    print(f"plots: {', '.join(summary['plots'])}")
    return 1 if summary["failed"] else 0


def main_runner(args: argparse.Namespace) -> int:
    from spikestream import jobs

    if args.command == "info":
        print(json.dumps(jobs.info(), indent=2))
    elif args.command == "run":
        if _is_batch(args.video):
            return _run_batch(args)
        report = jobs.run_video(args.video[0], args.model, args.out, _run_options(args), _hardware_options(args))
        _print_summary(report, args.out)
        _print_masking(report)
        _print_hardware(report)
    elif args.command == "sweep":
        return _run_sweep(args)
    elif args.command == "simulate":
        report = jobs.simulate_trace(args.trace, args.out, _hardware_options(args))
        _print_hardware(report)
        print(f"report: {args.out}/report.json")
    elif args.command == "demo":
        report = jobs.demo(args.out, frames=args.frames, options=_run_options(args))
        _print_summary(report, args.out)
    elif args.command == "bench":
        from spikestream.bench import BenchOptions, markdown_table

        report = jobs.bench(args.out, BenchOptions(model=args.model, video=args.video, frames=args.frames,
                                                   threshold=args.threshold, compile=not args.no_compile,
                                                   external_snns=not args.no_external, device=args.device,
                                                   rounds=args.rounds))
        print(markdown_table(report["rows"]))
        print(f"report: {args.out}/report.json")
    elif args.command == "compile":
        report = jobs.compile_rtl(args.model, args.out, device=args.device, parallel=args.parallel, bits=args.bits,
                                  weight_bits=args.weight_bits, verify=args.verify, simulator=args.simulator,
                                  synth=args.synth, clock_mhz=args.clock_mhz, max_luts=args.max_luts,
                                  accuracy_images=args.accuracy_images)
        _print_compile(report, args.out)
    elif args.command == "train":
        print(json.dumps(jobs.train(args.model, args.out, seed=args.seed), indent=2))
    return 0


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a scheduler or ``kill`` stopping the job) unwinds like Ctrl-C, so cleanup code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    try:
        args = main_parser().parse_args(argv)
    except SystemExit as exit_:  # usage errors (status 2), --help and --version (status 0)
        return int(exit_.code or 0)
    previous_quiet = set_quiet(args.quiet)
    clear_position()
    try:
        with _terminate_as_interrupt():
            return main_runner(args)
    except (InputError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        if args.debug:
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"spikestream {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM; atomic outputs removed their temporary files on the way out
        where = position()
        print(f"spikestream {args.command}: interrupted{f' ({where})' if where else ''}; files already complete "
              "are kept, nothing partial is left", file=sys.stderr)
        return 130
    finally:
        set_quiet(previous_quiet)  # callers in the same process (tests, notebooks) keep their setting


if __name__ == "__main__":
    sys.exit(main())
