"""Which names the firmware interns on a chip that the board-faithful build already holds.

A name a module loads (global, attribute, argument, function, import, short string) is interned
when the module loads, unless the firmware image holds it already. The faithful build's image
holds the simulated board's frozen modules (machine.py, network.py, ...), so a name the
firmware shares with them costs the faithful build nothing and the chip one qstr. ESP8266_ROM
lists the names a stock ESP8266_GENERIC image holds (its C modules' qstrs and its frozen
Python modules' names) as a module frozen into the faithful ESP8266 build, so that its image
holds them too; it is made by running this module on a MicroPython tree and a micropython-lib tree:

    python3 -m tests.support.qstrs MICROPYTHON_DIR MICROPYTHON_LIB_DIR > host_tools/luxnode/sim/board/esp8266_rom.py

It over-approximates the chip (every C file of py/, extmod/, shared/, drivers/ and the port, built
in or not), so the names it finds missing are missing for sure.
"""

import ast
import keyword
import re
import symtable
import sys
from pathlib import Path

ESP8266_ROM = Path(__file__).parents[2] / "host_tools" / "luxnode" / "sim" / "board" / "esp8266_rom.py"
SHORT = 10  # str constants up to this length are interned by the compiler (MICROPY_ALLOC_PARSE_INTERN_STRING_LEN)

# The frozen Python of ESP8266_GENERIC (ports/esp8266/boards/ESP8266_GENERIC/manifest_2MiB.py,
# ports/esp8266/boards/manifest.py and the micropython-lib packages they require).
FROZEN = ("ports/esp8266/modules", "extmod/asyncio")
FROZEN_LIB = ("micropython/mip", "micropython/net/ntptime", "python-stdlib/ssl", "python-ecosys/requests",
              "micropython/urequests", "micropython/net/webrepl", "micropython/drivers/sensor/dht",
              "micropython/drivers/sensor/ds18x20", "micropython/drivers/led/neopixel",
              "micropython/drivers/bus/onewire", "micropython/drivers/display/ssd1306", "micropython/upysh",
              "micropython/umqtt.simple", "micropython/umqtt.robust")


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
        if isinstance(node, ast.Name):
            if scope.get_type() != "function":
                if not (node.id.startswith("_") and _const_folded(tree, node.id)):
                    names.add(node.id)
            else:
                try:
                    symbol = scope.lookup(node.id)
                except KeyError:  # a comprehension's own scope: counted, to be safe
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


def tree_qstrs(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in sorted(folder.rglob("*.py")):
        if "test" in path.name or path.name == "manifest.py":
            continue
        names |= module_qstrs(path.read_text(), str(path))
    return names


_ESCAPES = {"hyphen": "-", "space": " ", "squot": "'", "comma": ",", "dot": ".", "colon": ":", "semicolon": ";",
            "slash": "/", "percent": "%", "hash": "#", "paren_open": "(", "paren_close": ")",
            "bracket_open": "[", "bracket_close": "]", "brace_open": "{", "brace_close": "}", "star": "*",
            "bang": "!", "backslash": "\\", "plus": "+", "dollar": "$", "equals": "=", "question": "?",
            "at_sign": "@", "caret": "^", "pipe": "|", "tilde": "~", "lt": "<", "gt": ">", "dquot": '"'}


def _unescape(qstr_name: str) -> str:
    return re.sub(r"_(%s)_" % "|".join(_ESCAPES), lambda m: _ESCAPES[m.group(1)], qstr_name)


def c_qstrs(micropython: Path) -> set[str]:
    names: set[str] = set()
    for folder in ("py", "extmod", "shared", "drivers", "ports/esp8266"):
        for path in (micropython / folder).rglob("*"):
            if path.suffix in (".c", ".h"):
                text = path.read_text(errors="replace")
                names.update(_unescape(n) for n in re.findall(r"MP_QSTR_(\w+)", text))
                names.update(re.findall(r"^Q\((.*)\)$", text, re.M))
                names.update(re.findall(r"X\((E[A-Z0-9]+)\)", text))  # moderrno's constants
    return names


def esp8266_rom(micropython: Path, micropython_lib: Path) -> set[str]:
    names = c_qstrs(micropython)
    for folder in FROZEN:
        names |= tree_qstrs(micropython / folder)
    for folder in FROZEN_LIB:
        names |= tree_qstrs(micropython_lib / folder)
    return names


def read_rom(path: Path = ESP8266_ROM) -> set[str]:
    """The names esp8266_rom.py holds: its attributes and its strings."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    return names


HEADER = """# The names a stock ESP8266_GENERIC image holds in ROM: the qstrs of its C modules and the names
# of its frozen modules (ports/esp8266/boards/ESP8266_GENERIC/manifest_2MiB.py), from MicroPython
# {micropython} and micropython-lib {lib}. Frozen into the faithful ESP8266 build and never imported:
# its image then holds them too, so the node's qstr count there is the chip's
# (tests/firmware/test_rom_qstrs.py). Made by: python3 -m tests.support.qstrs MICROPYTHON LIB
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
