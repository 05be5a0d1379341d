"""One simulated node: the firmware on the MicroPython unix port, as a supervised subprocess.

The node boots from its filesystem root (a folder with config.json and board.json,
and boot.py/main.py/lux/ when the firmware was deployed there; otherwise the
firmware from the source checkout is used). The simulated ``machine`` and
``network`` modules shadow the unix port's built-ins: from source on MICROPYPATH,
or frozen into the board-faithful 32-bit build (``faithful=True``, see
luxnode.sim.port), which also runs with the chip's GC heap size (board.json
``heap_bytes``) and keeps the board's clock across resets (not across power-on). Board resets print
``machine: reset CAUSE``; the supervisor then boots the process again, as the chip
would. The ambient light and the WiFi access point are controlled by lines on
the board's stdin.
"""

import collections
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from luxnode import boards
from luxnode.errors import LuxnodeError
from luxnode.paths import FIRMWARE_DIR
from luxnode.sim import port, scratch

BOARD_MODULES = port.BOARD_DIR
BOOT = "import boot\nimport main"
_RESET_PREFIX = "machine: reset "
_PR_SET_PDEATHSIG = 1
_STDOUT_LOCK = threading.Lock()


def micropython(explicit: str | None = None, faithful: bool = False, board: str | None = None) -> str:
    """The interpreter to run: the board-faithful build for the board, or any micropython (see
    luxnode.sim.port)."""
    return port.faithful_micropython(board=board) if faithful else port.find_micropython(explicit)


def heap_bytes(fs: Path) -> int | None:
    """The chip's GC heap from the root's board.json (or its board file when that lacks it)."""
    try:
        board = json.loads((fs / "board.json").read_text())
    except (OSError, ValueError):
        return None
    if "heap_bytes" not in board and board.get("name"):
        try:
            board = boards.load(board["name"])
        except LuxnodeError:
            return None
    return board.get("heap_bytes")


def _die_with_parent():
    # Runs in the child before exec: if the thread that started it dies, so does the node.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def module_path(fs: Path, faithful: bool = False) -> str:
    """MICROPYPATH: simulated board first (frozen in the faithful build), then the node's root,
    then the checkout's firmware."""
    parts = [str(fs)] if faithful else [str(BOARD_MODULES), str(fs)]
    in_rom = faithful and port.romfs_bytes(fs)
    if in_rom:  # after the filesystem, as the port has them: a /lux shadows /rom/lux
        parts += ["/rom", "/rom/lib"]
    lux = (fs / "lux").is_dir() or (in_rom and port.romfs_holds_image(fs))  # luxnode deploy [--romfs]
    deployed = lux and ((fs / "main.py").exists() or (fs / "main.mpy").exists())
    if not deployed:  # the chip runs lux/ as .mpy (luxnode deploy): from source it would not fit an ESP8266
        firmware = port.deployed_firmware(port.faithful_micropython(board=port.board_name(fs))) if faithful else FIRMWARE_DIR
        parts.append(str(firmware))
    parts.append(".frozen")  # the unix port's frozen modules (asyncio, ...)
    return ":".join(parts)


class SimNode:
    """A node running in a ``micropython`` subprocess, rebooted on board resets.

    ``output`` receives every line the node prints, prefixed with ``[device_id] ``:
    a callable, a path (appended to), or None for sys.stdout. ``lines`` keeps the
    recent unprefixed lines (the supervisor's own start with "sim: ");
    ``wait_line`` waits for one.
    """

    def __init__(self, fs: Path | str, *, ambient: float | None = None, output=None,
                 env: dict | None = None, bridge: bool = True, micropython: str | None = None,
                 faithful: bool = False):
        self.fs = Path(fs).resolve()
        config = self.fs / "config.json"
        if not config.exists():
            raise LuxnodeError(f"{config} not found; provision the node or start it with --device-id")
        try:
            self.config = json.loads(config.read_text())
        except ValueError as exc:
            raise LuxnodeError(f"{config}: not valid JSON ({exc}); fix or re-provision it") from None
        self.device_id = self.config.get("device_id") or self.fs.name
        if not (self.fs / "board.json").exists():   # the firmware would stop on it with a traceback
            raise LuxnodeError(f"{self.fs / 'board.json'} not found; write it with 'luxnode provision --fs "
                               f"{self.fs} --board sim ...' (or deploy the firmware there)")
        self.ambient = ambient
        self.wifi = True              # the access point is in range
        self.extra_env = env or {}
        self.faithful = faithful
        self.interpreter = micropython  # resolved at start()
        self._heap_args = []
        self.lines = collections.deque(maxlen=5000)
        self.resets = []              # reset causes seen, in order
        self.exit_code = None         # set when the node stopped by itself
        self._total = 0
        self._output = output
        self._log = None
        self._changed = threading.Condition()
        self._stdin_lock = threading.Lock()
        self._proc = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread = None
        self._scratch = None
        self._bridge = None
        self._want_bridge = bridge
        self._spawn_error = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> "SimNode":
        self.interpreter = micropython(self.interpreter, self.faithful, port.board_name(self.fs))
        if self.faithful:
            heap = heap_bytes(self.fs)
            if not heap:
                raise LuxnodeError(f"{self.fs / 'board.json'}: no heap_bytes; --faithful needs a chip's "
                                   "board (esp32, esp32s3, esp32c3, esp8266)")
            self._heap_args = ["-X", f"heapsize={heap + port.board_heap_overhead(self.interpreter, self.fs)}"]
            port.romfs_partition(self.fs)  # the chip's ROMFS partition, if its firmware has one
        if isinstance(self._output, (str, Path)):
            self._log = open(self._output, "a", buffering=1)
        self._scratch = scratch.make(self.device_id)
        self._thread = threading.Thread(target=self._supervise, name=f"sim {self.device_id}", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._spawn_error:
            self.stop()
            raise LuxnodeError(f"{self.device_id}: cannot start micropython: {self._spawn_error}")
        self._record(f"sim: started (pid {self.pid}, root {self.fs})")
        heap = f", heap {self._heap_args[1].split('=')[1]} B (the chip's and the board's)" if self._heap_args else ""
        self._record(f"sim: micropython {port.describe(self.interpreter)}{heap}")
        if self._want_bridge:
            from luxnode.sim.bridge import AmbientBridge
            try:
                self._bridge = AmbientBridge(self.config, self.set_ambient, self._record, self.fs)
                self._bridge.start()
            except BaseException:
                self.stop()
                raise
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc else None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the node's process group, SIGKILL after ``timeout``; nothing is left behind."""
        self._halt(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Pull the plug: SIGKILL, no goodbye to the broker."""
        self._halt(signal.SIGKILL, 5.0)

    def _halt(self, sig, timeout):
        self._stopping.set()
        if self._bridge:
            self._bridge.stop()
            self._bridge = None
        self._end_process(sig, timeout)
        if self._thread:
            self._thread.join(timeout)
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the simulated bench ---------------------------------------------------------

    def set_ambient(self, percent: float) -> None:
        self.ambient = float(percent)  # also the starting value after a reboot
        self.send(f"ambient {self.ambient}")

    def set_wifi(self, in_range: bool) -> None:
        """Take the WiFi access point away (False) or bring it back (True); a reboot keeps it so."""
        self.wifi = bool(in_range)
        self.send("wifi on" if self.wifi else "wifi off")

    def read_bench(self, timeout: float = 10.0) -> dict:
        """The bench as the board model holds it: {"ambient": %, "led": 0..1, "adc_reads": n}.
        Answered at the firmware's next ADC read, so an answer also shows it still samples."""
        mark = self.count
        self.send("bench")
        words = self.wait_line("machine: bench ", timeout, after=mark).split()[2:]
        return {key: float(value) for key, value in zip(words[::2], words[1::2])}

    def request_heap(self) -> None:
        """Ask the board to print 'machine: heap <alloc> <free>' at its next sensor read."""
        self.send("heap")

    def send(self, line: str) -> None:
        with self._stdin_lock:
            proc = self._proc
            if proc and proc.stdin and proc.poll() is None:
                try:
                    proc.stdin.write(line.encode() + b"\n")
                    proc.stdin.flush()
                except (BrokenPipeError, ValueError):
                    pass

    def wait_line(self, text: str, timeout: float = 10.0, after: int = 0) -> str:
        """The first line containing ``text`` among lines number ``after`` onwards (see ``count``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in list(self.lines)[max(0, after - self._dropped()):]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.device_id}: no line with {text!r} within {timeout} s")
                self._changed.wait(left)

    @property
    def count(self) -> int:
        """How many lines the node has printed so far."""
        return self._total

    def _dropped(self) -> int:
        return self._total - len(self.lines)

    # -- supervision ---------------------------------------------------------------

    def _env(self, cause: str) -> dict:
        env = dict(os.environ)
        env.update({
            "MICROPYPATH": module_path(self.fs, self.faithful),
            "LUXNODE_SIM_CONTROL": "stdin",
            "LUXNODE_SIM_RESET_CAUSE": cause,
            "LUXNODE_SIM_RTC": str(self._scratch / "rtc_memory"),
        })
        clock = self._scratch / "rtc_memory.clock"  # written when the firmware sets the clock
        if cause != "PWRON_RESET" and clock.exists():
            env["LUXNODE_SIM_CLOCK_OFFSET"] = clock.read_text().strip()
        if self.ambient is not None:
            env["LUXNODE_SIM_AMBIENT"] = str(self.ambient)
        if not self.wifi:
            env["LUXNODE_SIM_AP"] = "0"
        env.update(self.extra_env)
        return env

    def _spawn(self, cause: str) -> subprocess.Popen:
        return subprocess.Popen(
            [self.interpreter, *self._heap_args, "-c", BOOT], cwd=self.fs, env=self._env(cause),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )

    def _supervise(self):
        # This thread starts every process of the node: they die with it (PDEATHSIG).
        cause = "PWRON_RESET"
        try:
            while not self._stopping.is_set():
                with self._stdin_lock:
                    if self._stopping.is_set():
                        return
                    try:
                        self._proc = proc = self._spawn(cause)
                    except OSError as exc:
                        self._spawn_error = exc
                        return
                self._started.set()
                cause = None
                for raw in proc.stdout:
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    self._record(line)
                    if line.startswith(_RESET_PREFIX):
                        cause = line[len(_RESET_PREFIX):].strip()
                        self.resets.append(cause)
                        self._kill_group(proc, signal.SIGKILL)
                        break
                code = proc.wait()
                with self._stdin_lock:  # each boot has its own pipes
                    proc.stdin.close()
                    proc.stdout.close()
                if cause is None:
                    if not self._stopping.is_set():
                        self.exit_code = code
                        self._record(f"sim: node exited with code {code}")
                    return
        finally:
            self._started.set()
            self._stopping.set()
            with self._changed:
                self._changed.notify_all()

    def _record(self, line: str):
        with self._changed:
            self.lines.append(line)
            self._total += 1
            self._changed.notify_all()
        self._emit(line)

    def _emit(self, line: str):
        text = f"[{self.device_id}] {line}"
        if self._log:
            self._log.write(text + "\n")
        elif callable(self._output):
            self._output(text)
        else:
            with _STDOUT_LOCK:  # one whole line at a time, whichever node speaks
                sys.stdout.write(text + "\n")
                sys.stdout.flush()

    def _end_process(self, sig, timeout):
        with self._stdin_lock:
            proc = self._proc
        if not proc or proc.poll() is not None:
            return
        self._kill_group(proc, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(proc, signal.SIGKILL)
            proc.wait(timeout)

    @staticmethod
    def _kill_group(proc, sig):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def start_nodes(folders, *, ambient: float | None = None, output=None, log_name: str | None = None,
                bridge: bool = True, micropython: str | None = None, faithful: bool = False) -> list[SimNode]:
    """Start one node per filesystem root; on failure the ones already started are stopped.

    ``log_name`` (e.g. "node.log") sends each node's output to that file in its folder.
    """
    nodes = []
    try:
        for folder in folders:
            out = Path(folder) / log_name if log_name else output
            nodes.append(SimNode(folder, ambient=ambient, output=out, bridge=bridge,
                                 micropython=micropython, faithful=faithful))
            nodes[-1].start()   # listed first: a start cut short (Ctrl-C) is stopped with the others
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes, timeout: float = 5.0) -> None:
    for node in nodes:
        node.stop(timeout)


def exit_with_parent_signals() -> None:
    """Make SIGTERM/SIGHUP end the command like Ctrl-C, so nodes are stopped in ``finally``.

    SIGINT is set too: a shell starts background jobs (``luxnode sim &``) with it ignored."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)

