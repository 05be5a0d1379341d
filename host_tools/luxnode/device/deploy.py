"""``luxnode deploy``: put the firmware on a MicroPython board, compiled for its .mpy ABI.

Top-level files (boot.py, main.py) are copied as source, because the board runs
them by name; modules in packages (lux/) are compiled with the mpy-cross that
matches the board. Only files whose SHA-256 differs are copied; files a previous
deploy put there that are gone now are removed; config.json and whatever the
firmware writes itself are never touched. With ``--romfs`` the packages go into the
board's ROMFS partition instead (luxnode.device.romfs) and leave its filesystem.
"""

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from luxnode.errors import LuxnodeError


@dataclass
class Plan:
    files: dict[str, bytes]                   # path on the board -> content
    copy: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)

    @property
    def bytes_to_copy(self) -> int:
        return sum(len(self.files[p]) for p in self.copy)


def firmware_version(source: Path | None = None) -> str:
    """The version a firmware tree declares (VERSION in lux/version.py or lux/node.py)."""
    import re

    from luxnode import __version__
    from luxnode.paths import FIRMWARE_DIR

    for name in ("version.py", "node.py"):
        path = (source or FIRMWARE_DIR) / "lux" / name
        found = path.exists() and re.search(r"""^VERSION\s*=\s*["']([^"']+)""", path.read_text(), re.M)
        if found:
            return found.group(1)
    return __version__


def record_version(device_id: str | None, version: str) -> str | None:
    """Note the deployed version in the registry when the board is a provisioned device."""
    from luxnode.device import registry as reg

    if not device_id or not reg.path().exists():
        return None
    with reg.locked():
        registry = reg.load()
        entry = registry["devices"].get(device_id)
        if entry is None or entry.get("firmware") == version:
            return None
        entry["firmware"] = version
        reg.save(registry)
    return f"registry: {device_id} now runs firmware {version}"


def firmware_layout(source: Path) -> tuple[list[str], list[str]]:
    """(top-level files, top-level package folders) of a firmware tree."""
    files = sorted(p.name for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    dirs = sorted(p.name for p in source.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "__")))
    return files, dirs


def module_name(rel: Path) -> str:
    """lux/mqtt.py -> "lux.mqtt", lux/__init__.py -> "lux": the name a .mpy carries for its
    tracebacks. The board interns the module's name anyway; a path would be one more qstr
    per module, in qstr pools that grow by doubling (the ESP8266's fifth is 2.2 KB)."""
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def build(source: Path, compiler, board_file: dict) -> dict[str, bytes]:
    """Everything the board should hold: compiled modules, boot/main sources, board.json."""
    if not (source / "main.py").exists() and not (source / "boot.py").exists():
        raise LuxnodeError(f"{source} has no boot.py or main.py: is it the luxnode firmware folder?")
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="luxnode-mpy-") as tmp:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if not path.is_file() or any(part.startswith((".", "__pycache__")) for part in rel.parts):
                continue
            name = rel.as_posix()
            if path.suffix == ".py" and len(rel.parts) > 1:
                target = name[:-3] + ".mpy"
                out[target] = compiler.compile(path, module_name(rel), Path(tmp) / "out.mpy")
            else:
                out[name] = path.read_bytes()
    out["board.json"] = (json.dumps(board_file, indent=2) + "\n").encode()
    return out


def plan(files: dict[str, bytes], info: dict, top_dirs: list[str]) -> Plan:
    on_board: dict = info["files"]
    result = Plan(files)
    for path, data in files.items():
        if on_board.get(path) == hashlib.sha256(data).hexdigest():
            result.unchanged.append(path)
        else:
            result.copy.append(path)
    # Stale: in a folder deploy owns, or listed by the last deploy, and not in this one.
    owned = {p for p in on_board if p.split("/", 1)[0] in top_dirs or p in info.get("manifest", [])}
    result.remove = sorted(owned - set(files))
    result.dirs = sorted({"/".join(p.split("/")[:i]) for p in result.copy
                          for i in range(1, p.count("/") + 1)})
    return result


def apply(link, result: Plan, manifest_lines: list[str], say) -> None:
    from luxnode.device.board_info import MANIFEST

    for folder in result.dirs:
        link.mkdir(folder)
    with _progress() as progress:
        task = progress.add_task("copying", total=result.bytes_to_copy or 1)
        done = 0
        for path in result.copy:
            size = len(result.files[path])
            progress.update(task, description=path)
            link.write_file(path, result.files[path],
                            progress=lambda n, _total, base=done: progress.update(task, completed=base + n))
            done += size
            say(f"  copied  {path} ({size} bytes)")
    for path in result.remove:
        link.remove(path)
        say(f"  removed {path}")
    if manifest_lines != sorted(result.files):
        link.write_file(MANIFEST, ("\n".join(sorted(result.files)) + "\n").encode())


def deploy(link, source: Path, requested_board: str | None, optimize: int, say,
           force: bool = False, romfs: bool | None = False) -> tuple[str, dict]:
    """Deploy over an open link; returns (board name, board info). ``romfs``: the packages (lux/)
    go into the board's ROMFS partition and leave its filesystem (see luxnode.device.romfs);
    None: there if the board has a partition they fit, on the filesystem otherwise."""
    from luxnode import boards
    from luxnode.device import board_info, mpy, requirements

    top_files, top_dirs = firmware_layout(source)
    info = board_info.query(link, top_files + ["board.json"], top_dirs)
    board = board_info.choose_board(info, requested_board)
    abi = mpy.decode(info["mpy"])
    say(f"{link.port}: MicroPython {board_info.version_text(info)} on {info['machine'] or info['platform']}, "
        f".mpy {abi}, board {board}")
    requirements.check(source, info, info.get("tls"), boards.load(board), link.port, force, say)
    compiler = mpy.compiler_for(abi, optimize)
    files = build(source, compiler, boards.load(board))
    if romfs is not False:
        rest = deploy_romfs(link, files, top_dirs, boards.load(board), say, required=bool(romfs))
        romfs = rest is not None
        files = rest if romfs else files
    result = plan(files, info, top_dirs)
    apply(link, result, info.get("manifest", []), say)
    if romfs:
        remove_folders(link, top_dirs)  # an empty lux/ on the filesystem would still shadow /rom/lux
    say(f"deployed: {len(result.copy)} copied, {len(result.unchanged)} up to date, "
        f"{len(result.remove)} removed (mpy-cross {' '.join(compiler.flags())})")
    note = record_version(info.get("device_id"), firmware_version(source))
    if note:
        say(note)
    return board, info


def deploy_romfs(link, files: dict[str, bytes], top_dirs: list[str], board: dict, say,
                 required: bool = True) -> dict[str, bytes] | None:
    """Write the packages' files into the board's ROMFS; returns the files left for the
    filesystem. When it has none that fits: refused with the fix (nothing written) if
    ``required``, else None, saying so (the packages then go to the filesystem)."""
    from luxnode.device import romfs

    rom_files, rest = romfs.split(files, top_dirs)
    data = romfs.image(rom_files)
    found = romfs.query(link, len(data))
    try:
        romfs.check(found, len(data), link.port, board)
    except LuxnodeError:
        if required:
            raise
        say(f"ROMFS: none on this board that the {len(data)}-byte image fits; lux/ goes to the filesystem"
            + (" (MicroPython's ESP8266_GENERIC FLASH_2M_ROMFS firmware has one: its code then costs no heap)"
               if board.get("chip") == "ESP8266" else ""))
        return None
    where = f"ROMFS: {len(rom_files)} files, image {len(data)} bytes of the {found['size']}-byte partition"
    if found.get("sha") == romfs.sha256(data):
        say(f"{where}: up to date")
        return rest
    with _progress() as progress:
        task = progress.add_task("writing the ROMFS", total=len(data))
        romfs.write(link, data, found, lambda done, _total: progress.update(task, completed=done))
    say(f"{where}: written")
    return rest


def remove_folders(link, folders: list[str]) -> None:
    link.exec("import os\n"
              "def _rm(d):\n"
              " for e in os.ilistdir(d):\n"
              "  p = d + '/' + e[0]\n"
              "  _rm(p) if e[1] & 0x4000 else os.remove(p)\n"
              " os.rmdir(d)\n"
              f"for d in {folders!r}:\n"
              " try:\n  _rm(d)\n except OSError:\n  pass\n")


def _progress():
    """A progress bar on a terminal's stderr (none elsewhere): ``with _progress() as progress``."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description:<24}"), BarColumn(), DownloadColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def add_parser(subparsers) -> None:
    from luxnode.device.link import add_link_arguments

    parser = subparsers.add_parser(
        "deploy", help="copy the firmware to a MicroPython board (precompiled to .mpy)",
        description="Copy firmware/ to the board with mpremote (or ampy): modules precompiled with the "
                    "mpy-cross matching the board, only changed files, stale ones removed, "
                    "then a soft reset. --romfs puts the modules in the board's ROMFS partition.")
    add_link_arguments(parser)
    parser.add_argument("--board", help="board file (default: detected from the board)")
    parser.add_argument("--source", type=Path, help="firmware folder (default: the repository's firmware/)")
    parser.add_argument("--optimize", type=int, default=0, choices=range(4), metavar="N",
                        help="mpy-cross -O level (1+ drops asserts; default 0)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--romfs", action="store_true",
                       help="put lux/ in the board's ROMFS partition, where its bytecode costs no heap "
                            "(ESP8266: flash the ESP8266_GENERIC FLASH_2M_ROMFS firmware first)")
    where.add_argument("--romfs-if-present", action="store_true",
                       help="as --romfs where the board has a ROMFS partition lux/ fits, else the filesystem")
    parser.add_argument("--no-reset", action="store_true", help="leave the board in the REPL")
    parser.add_argument("--force", action="store_true",
                        help="deploy even to a MicroPython older than the firmware needs "
                             "(the board then boots to one line saying so)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from luxnode.device.link import open_link
    from luxnode.paths import FIRMWARE_DIR, require

    if args.source and not args.source.is_dir():
        raise LuxnodeError(f"--source {args.source} is not a folder: pass a firmware folder like the repository's firmware/")
    source = args.source or require(FIRMWARE_DIR)
    with open_link(args) as link:
        romfs = True if args.romfs else None if args.romfs_if_present else False
        deploy(link, source, args.board, args.optimize, print, args.force, romfs)
        if not args.no_reset:
            link.restart_node()
            print("soft reset: the board starts the firmware")
    return 0
