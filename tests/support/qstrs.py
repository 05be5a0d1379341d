"""Which names the firmware interns on a chip that the board-faithful build already holds.

A name a module loads (global, attribute, argument, function, import, short string) is interned
when the module loads, unless the firmware image holds it already. The faithful build's image
holds the simulated board's frozen modules (machine.py, network.py, ...), so a name the
firmware shares with them costs the faithful build nothing and the chip one qstr. ESP8266_ROM
lists the names a stock ESP8266_GENERIC image holds as a module frozen into the faithful ESP8266
build, so that its image holds them too. It is made by running this module on a MicroPython
checkout (with its lib/axtls and lib/berkeley-db-1.xx submodules) and a micropython-lib tree:

    python3 -m tests.support.qstrs MICROPYTHON_DIR MICROPYTHON_LIB_DIR [MP_COMMIT LIB_COMMIT] \
        > host_tools/luxnode/sim/board/esp8266_rom.py

which runs the ESP8266 port's own make rules (ports/esp8266/Makefile, py/py.mk, extmod/extmod.mk,
py/mkrules.mk) for ESP8266_GENERIC as the real build does, to two of their products:
- genhdr/qstrdefs.generated.h: py/makeqstrdefs.py collects MP_QSTR_ from the files the port
  compiles, preprocessed with its config (mpconfigport.h, mpconfigboard.h, py/mpconfig.h) and
  -DNO_QSTR, plus py/qstrdefs.h, the port's qstrdefsport.h and makeqstrdata.py's static names;
  a name inside a disabled #if, or in a file the port does not compile, is not there;
- frozen_content.c: mpy-tool.py's pool of the frozen modules' qstrs (manifest_2MiB.py), compiled
  by the tree's own mpy-cross (built here).
What remains approximate: the preprocessor is the host's i686-linux-gnu cpp with glibc's headers,
not xtensa-lx106-elf's with newlib's (the flags only xtensa's gcc knows are dropped, its defines
kept); the ESP8266 SDK's headers are empty stubs (SDK_HEADERS); the image is the default
(2 MiB) variant: FLASH_2M_ROMFS holds three names more ('/rom/lib', 'VfsRom', 'rom_ioctl', none
of them the firmware's), FLASH_1M and FLASH_512K freeze fewer modules and hold fewer.
"""

import ast
import keyword
import re
import subprocess
import symtable
import sys
import tempfile
from pathlib import Path

ESP8266_ROM = Path(__file__).parents[2] / "host_tools" / "luxnode" / "sim" / "board" / "esp8266_rom.py"
SHORT = 10  # str constants up to this length are interned by the compiler (MICROPY_ALLOC_PARSE_INTERN_STRING_LEN)
# Names the faithful build's own C (the unix port's) holds and an ESP8266 image lacks, which the
# node loads at start (lux.config, lux.node): the simulation cannot rename them, so the chip
# interns these more than the faithful count (tests/firmware/test_rom_qstrs.py keeps the list exact).
# Each is the firmware's own or used behind hasattr(): a port API the ESP8266 lacks does not go here
# (str.partition did: the ESP8266 has none).
# (Not gamma: the faithful ESP8266 has no math.gamma either, MICROPY_PY_MATH_SPECIAL_FUNCTIONS 0.)
UNIX_PORT_HELD = frozenset({"clock", "atten", "psk_identity", "psk_key", "CERT_REQUIRED"})

# A comprehension is a function of its own (its symtable scope), its variables slots too.
_COMPREHENSIONS = {ast.ListComp: "listcomp", ast.SetComp: "setcomp", ast.DictComp: "dictcomp", ast.GeneratorExp: "genexpr"}


def module_qstrs(source: str, name: str = "<module>") -> set[str]:
    """The names a compiled module refers to by qstr: not a function's local variables (they are
    slots), nor an underscored module constant (const() folds it away)."""
    tree = ast.parse(source)
    table = symtable.symtable(source, name, "exec")
    scopes = {}

    def index(t):
        scopes[(t.get_name(), t.get_lineno())] = t
        for child in t.get_children():
            index(child)

    index(table)
    names: set[str] = set()

    def visit(node, scope):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            inner = scopes.get((getattr(node, "name", "lambda"), node.lineno), scope)
            if not isinstance(node, ast.Lambda):
                names.add(node.name)
            for child in ast.iter_child_nodes(node):
                visit(child, inner if child not in getattr(node, "decorator_list", ()) else scope)
            return
        if type(node) in _COMPREHENSIONS:  # its first iterable is evaluated in the enclosing scope
            inner = scopes.get((_COMPREHENSIONS[type(node)], node.lineno), scope)
            first = node.generators[0].iter
            visit(first, scope)
            for child in ast.iter_child_nodes(node):
                for sub in ast.iter_child_nodes(child) if child is node.generators[0] else (child,):
                    if sub is not first:
                        visit(sub, inner)
            return
        if isinstance(node, ast.Name):
            if scope.get_type() != "function":
                if not (node.id.startswith("_") and _const_folded(tree, node.id)):
                    names.add(node.id)
            else:
                try:
                    symbol = scope.lookup(node.id)
                except KeyError:  # not in the scope found: counted, to be safe
                    names.add(node.id)
                else:
                    if symbol.is_global() or symbol.is_parameter():
                        names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom):
                names.add(node.module or "")
            for alias in node.names:
                names.update((alias.name, alias.asname or alias.name.split(".")[0]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) <= SHORT:
            names.add(node.value)
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, table)
    return names


def _const_folded(tree, name):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            return isinstance(value, ast.Call) and getattr(value.func, "id", None) == "const"
    return False


# Headers of the ESP8266 SDK (the xtensa toolchain's sysroot: the NONOS SDK and its lwIP) that no
# MicroPython checkout holds. Empty stubs do for the preprocessor: no #if around a qstr tests their
# macros (esp-open-lwip's real lwIP headers give the same names at 1c3c201).
SDK_HEADERS = ("c_types.h", "eagle_soc.h", "esp_sdk_ver.h", "espconn.h", "espnow.h", "ets_sys.h", "gpio.h", "mem.h",
               "os_type.h", "osapi.h", "queue.h", "spi_flash.h", "user_interface.h", "lwip/dns.h", "lwip/igmp.h",
               "lwip/init.h", "lwip/raw.h", "lwip/tcp.h", "lwip/tcp_impl.h", "lwip/timers.h", "lwip/udp.h")
SUBMODULES = ("lib/axtls", "lib/berkeley-db-1.xx")  # their headers the port's C includes
# The port's own make rules, with the host's 32-bit cpp for xtensa-lx106-elf's: its xtensa-only flags
# go (the defines stay), and warnings are off (glibc's headers and lwIP's both define BYTE_ORDER).
PORT_MAKE = ("BOARD=ESP8266_GENERIC", "CROSS_COMPILE=i686-linux-gnu-", "CFLAGS_EXTRA=-w",
             "CFLAGS_XTENSA=-D__ets__ -DICACHE_FLASH -DLWIP_OPEN_SRC")


def esp8266_rom(micropython: Path, micropython_lib: Path, variant: str = "") -> set[str]:
    """The names an ESP8266_GENERIC image (of ``variant``, default the 2 MiB one) holds: the qstrs
    its C preprocessed for its config yields, and the frozen pool mpy-tool makes of its manifest."""
    for folder in SUBMODULES:
        if not (micropython / folder).is_dir() or not any((micropython / folder).iterdir()):
            raise SystemExit(f"{micropython / folder} is empty: git submodule update --init {' '.join(SUBMODULES)}")
    with tempfile.TemporaryDirectory() as tmp:
        sdk, build, mpy_cross = Path(tmp, "sdk"), Path(tmp, "build"), Path(tmp, "mpy-cross", "mpy-cross")
        for header in SDK_HEADERS:
            (sdk / "include" / header).parent.mkdir(parents=True, exist_ok=True)
            (sdk / "include" / header).touch()
        _make(micropython / "mpy-cross", f"BUILD={mpy_cross.parent}")
        _make(micropython / "ports" / "esp8266", *PORT_MAKE, f"BOARD_VARIANT={variant}", f"BUILD={build}",
              f"ESP_SDK={sdk}", f"MPY_LIB_DIR={micropython_lib.resolve()}", f"MICROPY_MPYCROSS={mpy_cross}",
              str(build / "frozen_content.c"))
        return _c_pool(build / "genhdr" / "qstrdefs.generated.h") | _frozen_pool(build / "frozen_content.c")


def _make(folder: Path, *args: str):
    print(f"make -C {folder} {' '.join(args)}", file=sys.stderr)
    proc = subprocess.run(["make", "-j2", "-C", str(folder), *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"make failed in {folder}:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")


def c_text(literal: str) -> str:
    """A C string literal's text as makeqstrdata.py and mpy-tool.py write it: as is, or all \\xNN."""
    if literal.startswith("\\x"):
        return bytes.fromhex(literal.replace("\\x", "")).decode()
    return literal


def _c_pool(generated: Path) -> set[str]:
    return {c_text(m) for m in re.findall(r'^QDEF\d\(MP_QSTR\w*, \d+, \d+, "(.*)"\)$', generated.read_text(), re.M)}


def _frozen_pool(frozen_content: Path) -> set[str]:
    text = frozen_content.read_text()
    pool = text[text.index("mp_qstr_frozen_const_pool = {"):]
    pool = pool[pool.index("{\n", pool.index("mp_qstr_frozen_const_lengths")):pool.index("\n    },")]
    return {c_text(m) for m in re.findall(r'^ {8}"(.*)",$', pool, re.M)}


def read_rom(path: Path = ESP8266_ROM) -> set[str]:
    """The names esp8266_rom.py holds: its attributes and its strings."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    return names


HEADER = """# The names a stock ESP8266_GENERIC image holds in ROM: the qstrs of its C modules and those of
# its frozen modules (ports/esp8266/boards/ESP8266_GENERIC/manifest_2MiB.py), from MicroPython
# {micropython} and micropython-lib {lib}. Frozen into the faithful ESP8266 build and never imported:
# its image then holds them too, so the node's qstr count there is the chip's, less the few names
# the unix port's own C holds (tests/support/qstrs.py UNIX_PORT_HELD, tests/firmware/test_rom_qstrs.py).
# Made by: python3 -m tests.support.qstrs MICROPYTHON LIB
# fmt: off
_ = None
"""


if __name__ == "__main__":
    micropython, lib = Path(sys.argv[1]), Path(sys.argv[2])
    names = esp8266_rom(micropython, lib)
    print(HEADER.format(micropython=sys.argv[3] if len(sys.argv) > 3 else micropython.name,
                        lib=sys.argv[4] if len(sys.argv) > 4 else lib.name), end="")
    attribute = [n for n in names if n.isidentifier() and not keyword.iskeyword(n)]
    for name in sorted(attribute):
        print(f"_.{name}")
    print("_ = (")
    for name in sorted(n for n in set(names) - set(attribute) if len(n) <= SHORT):
        print(f"    {name!r},")
    print(")")
