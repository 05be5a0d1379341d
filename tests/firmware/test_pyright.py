"""The firmware type-checks clean (pyright, basic mode) against each port's published
stubs: micropython-esp32-esp32-generic-stubs and micropython-esp8266-esp8266-generic-stubs
1.29, installed with `pip install --target .stubs/<port>` (.ci/run does it). Ignores are
narrow: one named rule, on a line where the stub is wrong."""

import re
import shutil
import subprocess

import pytest

from luxnode.paths import REPO
from tests.support.micropython import FIRMWARE

CONFIGS = {port: REPO / "tools" / f"pyright-{port}.json" for port in ("esp32", "esp8266")}


@pytest.mark.parametrize("port", sorted(CONFIGS))
def test_firmware_type_checks_against_the_port_stubs(port):
    pyright = shutil.which("pyright")
    if not pyright:
        pytest.skip('pyright is not installed (pip install "pyright[nodejs]")')
    if not (REPO / ".stubs" / port / "machine.pyi").exists():
        pytest.skip(f"no stubs in .stubs/{port} (pip install --target .stubs/{port} micropython-...-stubs)")
    out = subprocess.run([pyright, "-p", str(CONFIGS[port])], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "0 errors" in out.stdout, out.stdout + out.stderr


def test_type_ignores_name_their_rule():
    for path in FIRMWARE.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"#\s*(type:\s*ignore|pyright:\s*ignore)(?!\[\w+\])", line):
                pytest.fail(f"{path.relative_to(REPO)}:{n}: a blanket ignore; name the rule")
