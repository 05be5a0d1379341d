"""Whether a board's MicroPython can run the firmware, before anything is written to it.

The numbers are the firmware's own (firmware/needs.py, which the board runs at boot):
read here as literals, so deploy, provision and the board say the same.
"""

import ast
from pathlib import Path

from luxnode.errors import LuxnodeError

NEEDS_FILE = "needs.py"
FORCE_HINT = "--force writes anyway; the board then boots to one line saying this"


def constants(source: Path) -> dict:
    """The literal assignments of the firmware tree's needs.py ({} when it has none)."""
    path = source / NEEDS_FILE
    if not path.is_file():
        return {}
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


def needed(source: Path, platform: str, tls_mode: str | None) -> tuple[tuple[int, ...], str] | None:
    """(oldest MicroPython, what needs it) for a port and TLS mode, as needs.needed() says on the board."""
    table = constants(source)
    if tls_mode == "psk" and "PSK_VERSION" in table:
        return tuple(table["PSK_VERSION"]), "TLS-PSK"
    base = table.get("MIN_VERSION", {}).get(platform)
    return (tuple(base), "this firmware") if base else None


def text(version) -> str:
    return ".".join(str(n) for n in version)


def problem(source: Path, info: dict, tls_mode: str | None, board: dict, port: str) -> str | None:
    """One line naming the MicroPython found, the one needed and the flash command, or None."""
    if not info.get("version") or not info.get("platform"):
        return None
    need = needed(source, info["platform"], None if tls_mode == "none" else tls_mode)
    found = tuple(info["version"])
    if need is None or found >= need[0]:
        return None
    build = board.get("micropython", {}).get("build", "MicroPython")
    return (f"MicroPython {text(found)} on {port} is too old: {need[1]} needs {text(need[0])} or newer; "
            f"flash it with luxnode flash --port {port} --board {board['name']} "
            f"--firmware {build}-<date>-v<version>.bin")


def check(source: Path, info: dict, tls_mode: str | None, board: dict, port: str, force: bool, say) -> None:
    """Refuse a board too old for the firmware, or with ``force`` say so and go on."""
    line = problem(source, info, tls_mode, board, port)
    if line and not force:
        raise LuxnodeError(f"{line}; {FORCE_HINT}")
    if line:
        say(f"warning: {line}; writing anyway (--force)")
