"""Coverage-guided fuzzing of one input reader with atheris (libFuzzer), starting from the harness's seed file.

    python tests/fuzz_atheris.py KIND [libFuzzer flags, e.g. -runs=2000 -max_total_time=60]

KIND is a key of ``_fuzzing.INPUT_KINDS``. Each input is written to a file with the seed's suffix and read;
a one-line ``InputError`` is the expected refusal, anything else (another exception, a multi-line message,
a hang past libFuzzer's -timeout) is a crash that libFuzzer reports with the input that caused it.
tests/test_fuzz.py runs every kind for a bounded number of runs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

# our code, not torch; not the numba kernels either: numba compiles a function from its bytecode, and
# instrumented bytecode calls into atheris, which numba cannot compile
with atheris.instrument_imports(include=["spikestream", "_fuzzing"], exclude=["spikestream.engine._sparse_kernels"]):
    from _fuzzing import INPUT_KINDS
    from spikestream.errors import InputError


def main() -> None:
    kind = INPUT_KINDS[sys.argv[1]]
    folder = Path(tempfile.mkdtemp(prefix=f"atheris-{kind.name}-"))
    seed = kind.make_seed(folder)
    corpus = folder / "corpus"
    corpus.mkdir()
    (corpus / "seed").write_bytes(seed.read_bytes())
    target = folder / f"input{seed.suffix}"

    def one_input(data: bytes) -> None:
        target.write_bytes(data)
        try:
            kind.read(target)
        except InputError as error:
            if "\n" in str(error) or not str(error).strip():
                raise AssertionError(f"error message is not one line: {error!r}") from error

    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
