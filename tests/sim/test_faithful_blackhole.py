"""The board-faithful build's dead network path (control line "net blackhole on|off",
_simchip.blackhole): the broker's host is gone while the TCP connection stays open, so the chip's
lwIP keeps every segment unacknowledged and nothing more arrives (what had reached the board is
still read). On the ESP8266 a write that finds TCP_SND_QUEUELEN (8) pbufs queued blocks 10 s in
modlwip's retry loop, past the watchdog."""

import os
import subprocess
import threading

import pytest

from tests.sim.faithful import chip_root, faithful_binary, run_chip
from tests.support.net import Listener


class _Peer:
    """One loopback listener: says "early" on accept, then keeps every byte it receives."""

    def __init__(self):
        self.received = b""
        self.done = threading.Event()
        self.listener = Listener(self._serve)
        self.port = self.listener.port

    def _serve(self, conn):
        conn.settimeout(30)
        with conn:
            conn.sendall(b"early")
            try:
                while chunk := conn.recv(4096):
                    self.received += chunk
            except OSError:
                pass
        self.done.set()

    def close(self):
        self.listener.close()


NODELAY = "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)"
CLIENT = """import errno, socket, time, _simchip
s = socket.socket()
s.connect(socket.getaddrinfo("127.0.0.1", %d)[0][-1])
s.setblocking(False)
%s
time.sleep_ms(200)  # "early" has arrived in the host's buffer
%s
_simchip.blackhole(1)
print("read", s.read(10), s.read(10))
for i in range(%d):
    t = time.ticks_ms()
    try:
        print("wrote", s.write(b"%%02d" %% (i %% 100) * %d), time.ticks_diff(time.ticks_ms(), t))
    except OSError as e:
        print("failed", errno.errorcode[e.errno], time.ticks_diff(time.ticks_ms(), t))
_simchip.blackhole(0)
s.write(b"|end")
s.close()
"""


def _run(board, writes, size=10, setup="", nodelay=True, **kw):
    peer = _Peer()
    try:
        out = run_chip(chip_root(kw.pop("root"), board),
                       CLIENT % (peer.port, NODELAY if nodelay else "", setup, writes, size // 2), **kw)
        assert peer.done.wait(15), "the peer saw no end of the connection"
    finally:
        peer.close()
    return out, peer.received


def test_esp8266_holds_8_pbufs_then_a_write_blocks_10_s_and_fails_with_enomem(tmp_path):
    # TCP_NODELAY: each write is a segment of its own, one pbuf each
    out, received = _run("esp8266", 9, root=tmp_path, timeout=60)
    # "early" had reached the board before the path died; nothing comes after it
    assert out[0] == "read b'early' None"
    assert [line.split()[:2] for line in out[1:9]] == [["wrote", "10"]] * 8
    failed, code, ms = out[9].split()
    assert (failed, code) == ("failed", "ENOMEM") and 10_000 <= int(ms) < 12_000, out
    # the path back: what was held arrives, in order, then what follows (the 9th never was taken)
    assert received == b"".join(b"%02d" % i * 5 for i in range(8)) + b"|end"


CHAIN = """import errno, socket, time, _simchip
s = socket.socket()
s.connect(socket.getaddrinfo("127.0.0.1", %d)[0][-1])
s.setblocking(False)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_simchip.blackhole(1)
s.write(b"a" * 300)
for _ in range(5):
    s.write(b"b" * 50)
%s
for size in (500, 10):
    t = time.ticks_ms()
    try:
        print("wrote", s.write(b"c" * size), time.ticks_diff(time.ticks_ms(), t))
    except OSError as e:
        print("failed", errno.errorcode[e.errno], time.ticks_diff(time.ticks_ms(), t))
_simchip.blackhole(0)
s.close()
"""


@pytest.mark.parametrize("wait, last", [("", "wrote 10"), ("time.sleep_ms(800)", "failed ENOMEM")])
def test_esp8266_after_a_retransmission_timeout_a_write_chains_one_more_pbuf(tmp_path, wait, last):
    # Six segments held (550 bytes, 6 pbufs). Before a retransmission timeout a 500-byte write
    # is a segment of its own (7 pbufs) and a 10-byte one the 8th. After one (0.5-0.75 s in,
    # tcp_slowtmr), cwnd is one TCP_MSS: the first 500 bytes go again, the sixth segment (50
    # bytes) waits on pcb->unsent with unsent_oversize 0, so the 500 bytes take a pbuf chained
    # to it (tcp_write's Phase 2, 486 bytes) and a new segment (Phase 3, 14): 8 pbufs, and the
    # 10 bytes find the queue full (tcp_write_checks): modlwip's 10 s of retries, ENOMEM.
    peer = _Peer()
    try:
        out = run_chip(chip_root(tmp_path, "esp8266"), CHAIN % (peer.port, wait), timeout=60)
    finally:
        peer.close()
    assert out[0].split()[:2] == ["wrote", "500"], out
    assert " ".join(out[1].split()[:2]) == last, out
    if last.startswith("failed"):
        assert 10_000 <= int(out[1].split()[2]) < 12_000, out


def test_esp8266_with_nagle_small_writes_share_a_pbuf_and_the_send_buffer_fills_first(tmp_path):
    # Nagle (no TCP_NODELAY, tcp_do_output_nagle): the first write goes as a segment; the next
    # wait unsent while it is unacknowledged, copied into the oversize of one pbuf (tcp_write's
    # Phase 1) until it is a full TCP_MSS, then another. 120 writes of 10 bytes: 107 fit
    # TCP_SND_BUF (1072 bytes) in 3 pbufs, the next is cut to the 2 bytes left; then EAGAIN at
    # once (write() returns None), never modlwip's ERR_MEM loop.
    out, received = _run("esp8266", 120, nodelay=False, root=tmp_path, timeout=60)
    assert out[0] == "read b'early' None"
    wrote = [line.split() for line in out[1:]]
    assert [w[:2] for w in wrote[:107]] == [["wrote", "10"]] * 107, out
    assert wrote[107][:2] == ["wrote", "2"], out
    assert {tuple(w[:2]) for w in wrote[108:]} == {("wrote", "None")}, out
    assert max(int(w[2]) for w in wrote) < 500, out
    assert received == b"".join(b"%02d" % (i % 100) * 5 for i in range(107)) + b"07" + b"|end"


def test_esp8266_write_beyond_the_send_buffer_is_cut_to_it_then_eagain(tmp_path):
    # TCP_SND_BUF is 2 * TCP_MSS = 1072 bytes: a 1,100-byte write takes 1,072 (2 pbufs), the next
    # finds no room (tcp_sndbuf 0): EAGAIN at once, which a stream's write() returns as None.
    out, received = _run("esp8266", 2, size=1100, root=tmp_path)
    assert out[1].split()[:2] == ["wrote", "1072"] and out[2].split()[:2] == ["wrote", "None"], out
    assert len(received) == 1072 + len(b"|end")


def test_esp32_full_queue_gives_eagain_at_once(tmp_path):
    # lwIP's sockets on the ESP32 (ESP-IDF defaults: TCP_MSS 1440, 16 pbufs): a non-blocking
    # write that finds them all queued fails at once with EAGAIN (write() returns None).
    out, _ = _run("esp32", 17, root=tmp_path)
    assert [line.split()[:2] for line in out[1:17]] == [["wrote", "10"]] * 16
    wrote, none, ms = out[17].split()
    assert (wrote, none) == ("wrote", "None") and int(ms) < 500, out


def test_esp8266_watchdog_resets_the_board_in_the_write_loop(tmp_path):
    """With WDT() the port's event loop no longer feeds the software watchdog, and modlwip's
    retry loop feeds nothing: the board resets 1.6-3.2 s into the 10 s loop."""
    peer = _Peer()
    code = CLIENT % (peer.port, NODELAY, "import machine\nwdt = machine.WDT()", 9, 5)
    code = code.replace("    t = time.ticks_ms()", "    wdt.feed()\n    t = time.ticks_ms()")
    env = dict(os.environ, MICROPYPATH=".frozen", LUXNODE_SIM_CONTROL="stdin")
    proc = subprocess.Popen([faithful_binary("esp8266"), "-c", code], cwd=chip_root(tmp_path, "esp8266"), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("machine: reset") or line.startswith("failed"):
                break
    finally:
        proc.kill()
        proc.wait()
        peer.close()
    assert lines[-2:] == ["machine: watchdog timeout (ESP8266 software watchdog: no feed for 1.6-3.2 s)",
                          "machine: reset SOFT_WDT_RESET"], lines
    assert sum(line.startswith("wrote") for line in lines) == 8


@pytest.mark.parametrize("line, printed", [("net blackhole on", "machine: network path dead"),
                                           ("net blackhole off", "machine: network path back")])
def test_control_line_kills_and_restores_the_path(tmp_path, line, printed):
    # The board reads its control lines with the ADC: read until the line has come (then the
    # end of stdin is the board's power going, which ends it), 3 s at most.
    code = "import machine, time\nfor _ in range(300):\n    machine.ADC(0).read()\n    time.sleep_ms(10)\n"
    env = dict(os.environ, MICROPYPATH=".frozen", LUXNODE_SIM_CONTROL="stdin")
    proc = subprocess.run([faithful_binary("esp8266"), "-c", code], cwd=chip_root(tmp_path, "esp8266"), env=env,
                          input=line + "\n", capture_output=True, text=True, timeout=30)
    assert printed in proc.stdout.splitlines(), proc.stdout + proc.stderr
