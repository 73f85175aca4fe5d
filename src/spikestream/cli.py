"""Command line: parse arguments, call one library function, print. ``spikestream <command> --help``."""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from spikestream import __version__
from spikestream._progress import set_quiet
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
    parser.add_argument("--keyframe", type=int, default=None, metavar="K", help="a keyframe every K frames")
    parser.add_argument("--tile", type=_tile, default=(16, 16), help="output tile for per-tile work, e.g. 16x16")


def main_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spikestream", description="Spiking neural networks on video.")
    parser.add_argument("--version", action="version", version=f"spikestream {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("info", help="version, devices, and where data is found")

    run = commands.add_parser("run", help="stream a video through a model and write report.json")
    run.add_argument("video", help="a video file, or a .npy array of frames (N, H, W) or (N, C, H, W)")
    run.add_argument("--model", required=True, help="a .nir file or a zoo model name")
    run.add_argument("--out", required=True, help="output folder (report.json, trace.npz)")
    run.add_argument("--frames", type=int, default=None, help="process at most this many frames")
    _add_run_options(run)

    demo = commands.add_parser("demo", help="the main job on an embedded default input")
    demo.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--frames", type=int, default=60, help="number of synthetic frames (default 60)")
    _add_run_options(demo)

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
    return RunOptions(encoding=args.encoding, threshold=args.threshold, steps=args.steps, backend=args.backend,
                      frames=args.frames, keyframe_every=args.keyframe, tile=args.tile)


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


def main_runner(args: argparse.Namespace) -> int:
    from spikestream import jobs

    if args.command == "info":
        print(json.dumps(jobs.info(), indent=2))
    elif args.command == "run":
        report = jobs.run_video(args.video, args.model, args.out, _run_options(args))
        _print_summary(report, args.out)
    elif args.command == "demo":
        report = jobs.demo(args.out, frames=args.frames, options=_run_options(args))
        _print_summary(report, args.out)
    elif args.command == "train":
        print(json.dumps(jobs.train(args.model, args.out, seed=args.seed), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = main_parser().parse_args(argv)
    except SystemExit as exit_:  # usage errors (status 2), --help and --version (status 0)
        return int(exit_.code or 0)
    set_quiet(args.quiet)
    try:
        return main_runner(args)
    except (InputError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        if args.debug:
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"spikestream {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"spikestream {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
