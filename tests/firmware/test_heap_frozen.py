"""lux frozen into the firmware (tools/freeze-manifest.py) on the faithful ESP8266 meets issue 8's
heap targets: at most 12 KB above an idle board connected and subscribed, at most 14 KB after 200
QoS 1 commands of every kind (discovery and telemetry on), and 8 KB free after them.

And tools/freeze-manifest.py, run as MicroPython's build runs manifests, stays the users' manifest
for a real ESP8266 or ESP32 while that variant takes lux from it.

It builds the faithful build's frozen-lux variant (30-80 s on two shared cores, cached by lux's
sources and the manifest). It always runs on that ESP8266, so under LUXNODE_FAITHFUL it is left to the plain run."""

import os
import sys
import tarfile

import pytest

from luxnode.errors import LuxnodeError
from luxnode.sim import port
from tests.support.heap32 import TARGET_AFTER, TARGET_CONNECTED, checked_burst, lux_frozen



@pytest.mark.skipif(bool(os.environ.get("LUXNODE_FAITHFUL")),
                    reason="runs on the faithful ESP8266 with lux frozen in whatever LUXNODE_FAITHFUL says: "
                           "the plain run covers it")
def test_frozen_lux_meets_the_heap_targets_on_the_esp8266(mosquitto, tmp_path):
    try:
        chip = lux_frozen(tmp_path)
    except LuxnodeError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no frozen-lux faithful build: {e}")
    result = checked_burst(chip, mosquitto("allow_anonymous true\n"))
    assert not (chip.root / "lux").exists()  # lux can come only from the frozen modules
    assert result.connected <= TARGET_CONNECTED and result.after <= TARGET_AFTER, result


def manifestfile_module(folder):
    """MicroPython's tools/manifestfile.py (what a port's build runs manifests with), from the
    faithful build's source."""
    try:
        kind, where = port.source()
    except LuxnodeError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no MicroPython source: {e}")
    if kind == "tree":
        tools = where / "tools"
    else:
        (archive,) = where.glob("micropython-*-src.tar.gz")
        tools = folder / "tools"
        tools.mkdir()
        with tarfile.open(archive) as tar:
            (tools / "manifestfile.py").write_bytes(tar.extractfile("tools/manifestfile.py").read())
    sys.path.insert(0, str(tools))
    try:
        import manifestfile
    finally:
        sys.path.remove(str(tools))
    return manifestfile


def test_the_users_manifest_freezes_the_ports_modules_then_lux_and_the_faithful_build_lux_alone(tmp_path):
    """tools/freeze-manifest.py as a port's FROZEN_MANIFEST takes $(PORT_DIR)/boards/manifest.py
    (the port's own modules) and lux/; the faithful variant includes it for lux/ alone."""
    manifestfile = manifestfile_module(tmp_path)
    fake_port = tmp_path / "port"
    (fake_port / "boards").mkdir(parents=True)
    (fake_port / "boards" / "manifest.py").write_text('module("port_module.py", base_path="$(PORT_DIR)")\n')
    (fake_port / "port_module.py").write_text("")
    lux = sorted(f"lux/{p.name}" for p in port.LUX_PACKAGE.glob("*.py"))
    for options, expected in (({}, ["port_module.py", *lux]), ({"port_manifest": False}, lux)):
        manifest = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {"MPY_DIR": str(tmp_path),
                                                                       "PORT_DIR": str(fake_port)})
        manifest.include(str(port.LUX_MANIFEST), **options)
        assert sorted(f.target_path for f in manifest.files()) == sorted(expected), options
    assert f'include("{port.LUX_MANIFEST}", port_manifest=False)' in port.manifest_text(frozen_lux=True)
    assert "freeze-manifest" not in port.manifest_text()
