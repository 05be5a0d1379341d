"""Small helpers shared by the device-tooling tests."""

from pathlib import Path

from luxnode import cli


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``luxnode ARGV`` in-process; (exit code, stdout, stderr) of that run alone, not what
    the test printed before it (a fixture's first faithful build says it is building)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tiny_firmware(root: Path) -> Path:
    """A firmware tree shaped like firmware/: boot.py, main.py and a lux/ package."""
    (root / "lux").mkdir(parents=True)
    (root / "boot.py").write_text("print('boot')\n")
    (root / "main.py").write_text("import lux.app\nlux.app.run()\n")
    (root / "lux" / "app.py").write_text("from lux import util\n\ndef run():\n    return util.ANSWER\n")
    (root / "lux" / "util.py").write_text("ANSWER = 42\n")
    return root


def one_line_error(code: int, err: str, *needles: str) -> None:
    """A CLI failure: exit code 2, exactly one line, no traceback, naming what to do."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
