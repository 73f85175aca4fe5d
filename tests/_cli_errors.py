"""The CLI's bad-input contract, shared by the CLI tests: one line on stderr, exit status 2."""

from spikestream.cli import main


def user_error(capsys, argv, pattern):
    """Run ``spikestream --quiet ARGV``; assert it fails with exit 2 and one stderr line containing ``pattern``."""
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert pattern in err[0], err[0]
    assert "Traceback" not in err[0]
    return err[0]
