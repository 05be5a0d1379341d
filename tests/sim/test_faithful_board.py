"""The board-faithful build (luxnode sim --faithful): each chip behaviour the ports' sources
give, shown on the 32-bit unix build with the simulated board frozen in."""

import calendar
import os
import ssl
import subprocess
import time

import pytest

from luxnode import boards
from luxnode.sim import port
from tests.firmware.certs import make_ca_and_server
from tests.sim.faithful import chip_root, faithful_binary, run_chip
from tests.support.net import Listener


def test_the_build_is_32_bit_with_the_chips_small_ints_and_tick_period(tmp_path):
    out = run_chip(chip_root(tmp_path, "esp32"), "import sys, time\n"
                   "print(sys.maxsize, time.ticks_add(0, -1), sys.implementation._thread)")
    assert out == [f"{2**31 - 1} {2**30 - 1} GIL"]  # threads under a GIL, as on the ESP32 port
    assert port.describe(faithful_binary()).endswith("(32-bit)")


def test_board_modules_are_frozen_in_not_loaded_from_files(tmp_path):
    out = run_chip(chip_root(tmp_path, "esp32"), "import machine, network, socket, time, _simchip\n"
                   "print(machine.__file__, network.__file__, socket.__file__, time.__file__)")
    # MICROPYPATH is ".frozen" alone: these come from the binary (a frozen module's __file__ is its
    # name in the manifest), not from files, as the ports' machine and network are C.
    assert out == ["machine.py network.py socket.py time.py"]


MINUTES_2000_TO_SET = (calendar.timegm((2026, 11, 30, 12, 30, 0)) - calendar.timegm((2000, 1, 1, 0, 0, 0))) // 60


@pytest.mark.parametrize("board", ["esp32", "esp8266"])
def test_clock_starts_at_2000_on_power_on_until_the_firmware_sets_it(tmp_path, board):
    code = """import machine, time
print(time.gmtime()[:3], time.time() < 5, machine.RTC().datetime()[:3])
machine.RTC().datetime((2026, 11, 30, 0, 12, 30, 0, 0))   # what ntptime.settime() does
print(time.gmtime()[:5], machine.RTC().datetime()[4:6], time.time() // 60)
"""
    out = run_chip(chip_root(tmp_path, board), code)
    assert out == ["(2000, 1, 1) True (2000, 1, 1)",
                   f"(2026, 11, 30, 12, 30) (12, 30) {MINUTES_2000_TO_SET}"]  # the ports count from 2000


def test_clock_set_by_the_firmware_survives_a_reset_not_a_power_on(tmp_path):
    root = chip_root(tmp_path, "esp32")
    rtc = tmp_path / "rtc"
    env = {"LUXNODE_SIM_RTC": str(rtc)}
    run_chip(root, "import machine\nmachine.RTC().datetime((2026, 11, 30, 0, 12, 30, 0, 0))", env)
    offset = (tmp_path / "rtc.clock").read_text()
    after_reset = run_chip(root, "import time\nprint(time.gmtime()[:4])", dict(env, LUXNODE_SIM_CLOCK_OFFSET=offset))
    assert after_reset == ["(2026, 11, 30, 12)"]
    assert run_chip(root, "import time\nprint(time.gmtime()[:3])", env) == ["(2000, 1, 1)"]


class _TLSServer:
    """One TLS listener with a certificate valid from yesterday: "hello" after each handshake."""

    def __init__(self, folder):
        ca, cert, key = make_ca_and_server(folder)
        self.ca = ca
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.ctx = ctx
        self.listener = Listener(self._handshake)
        self.port = self.listener.port

    def _handshake(self, conn):
        conn.settimeout(10)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.listener.close()


def test_mbedtls_checks_the_certificate_against_the_boards_clock(tmp_path):
    """ESP32 (MBEDTLS_HAVE_TIME_DATE): a certificate valid from yesterday is "in the future" in 2000."""
    server = _TLSServer(tmp_path)
    code = """import machine, socket, tls, time
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = tls.CERT_REQUIRED
ctx.load_verify_locations(%r)  # DER, as the ports' tls takes it
def handshake():
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", %d)[0][-1])
    try:
        print(ctx.wrap_socket(s, server_hostname="localhost").read(5))
    except (OSError, ValueError) as e:  # mbedTLS's verification errors come as ValueError
        print("refused:", str(e).strip())
handshake()
t = %r
machine.RTC().datetime((t[0], t[1], t[2], 0, t[3], t[4], t[5], 0))
handshake()
""" % (ssl.PEM_cert_to_DER_cert(server.ca.read_text()), server.port, tuple(time.gmtime()[:6]))
    try:
        out = run_chip(chip_root(tmp_path, "esp32"), code)
    finally:
        server.close()
    assert len(out) == 2 and "validity starts in the future" in out[0], out
    assert out[1] == "b'hello'"


def _watchdog_run(tmp_path, feeds_every_ms, run_ms, block_ms):
    """WDT(), fed every ``feeds_every_ms`` for ``run_ms``, then a block of ``block_ms`` before the
    loop feeds again: the reset cause the board printed, or None if it ran on."""
    code = """import machine, time
wdt = machine.WDT()
end = time.ticks_add(time.ticks_ms(), %d)
while time.ticks_diff(end, time.ticks_ms()) > 0:
    wdt.feed()
    time.sleep_ms(%d)
wdt.feed()
time.sleep_ms(%d)
wdt.feed()
print("still running")
""" % (run_ms, feeds_every_ms, block_ms)
    env = dict(os.environ, MICROPYPATH=".frozen", LUXNODE_SIM_CONTROL="stdin")
    proc = subprocess.Popen([faithful_binary("esp8266"), "-c", code], cwd=chip_root(tmp_path, "esp8266"), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("machine: reset"):
                return line.split()[2]
            if line.startswith("still running"):
                return None
    finally:
        proc.kill()
        proc.wait()
    raise AssertionError("the board printed neither a reset nor its last line")


@pytest.mark.parametrize("run_ms", [300, 1100])  # two phases of the SDK's 1.6 s timer
def test_esp8266_watchdog_resets_when_the_loop_blocks_longer_than_3_2_s(tmp_path, run_ms):
    assert _watchdog_run(tmp_path, feeds_every_ms=100, run_ms=run_ms, block_ms=3300) == "SOFT_WDT_RESET"


@pytest.mark.parametrize("run_ms", [300, 1100])
def test_esp8266_watchdog_lets_a_block_under_1_6_s_pass(tmp_path, run_ms):
    assert _watchdog_run(tmp_path, feeds_every_ms=100, run_ms=run_ms, block_ms=1500) is None


def test_esp8266_watchdog_fed_every_second_never_resets(tmp_path):
    # Fed within every 1.6 s tick for 5 s (the period WDT() is documented with).
    assert _watchdog_run(tmp_path, feeds_every_ms=1000, run_ms=5000, block_ms=0) is None


def test_esp8266_pwm_is_10_bit_and_its_constructor_rounds_to_1000(tmp_path):
    code = """import machine
p = machine.PWM(machine.Pin(14), freq=1000, duty_u16=65535)
print(p.duty(), p.duty_u16())
p.duty_u16(65535); print(p.duty())
p.duty_u16(32768); print(p.duty(), p.duty_u16())
p.duty_u16(63); print(p.duty())
p.duty_u16(64); print(p.duty())
"""
    out = run_chip(chip_root(tmp_path, "esp8266"), code)
    # 65535 * 1000 // 65535 = 1000 of 1023 (97.8 %); duty_u16() maps * 1024 // 65535 (clamped to
    # 1023), so below 64 is off.
    assert out == ["1000 63999", "1023", "512 32767", "0", "1"]


@pytest.mark.parametrize("board, freq, bits", [
    ("esp32", 1000, 16), ("esp32", 40000, 10),      # 80 MHz / freq: 16 bits hold up to about 1.2 kHz
    ("esp32s3", 1000, 13), ("esp32s3", 40000, 10),  # 14-bit timer, less one at its full width
    ("esp32c3", 1000, 13), ("esp32c3", 40000, 10),
])
def test_esp32_family_pwm_keeps_the_bits_its_timer_has_at_the_frequency(tmp_path, board, freq, bits):
    # ports/esp32/machine_pwm.c: the duty register gets duty_u16 >> (16 - bits), duty_u16() reads
    # it back << (16 - bits) (65536, full, as 65535); the LED is on for duty / 2**bits of the period.
    step = 1 << (16 - bits)
    code = f"""import json, machine, time
p = machine.PWM(machine.Pin(json.load(open("board.json"))["pwm"]["pin"]), freq={freq}, duty_u16={step - 1})
led = lambda: int(machine._the_bench().led * 65536 + 0.5)
def read():  # the duty register takes a new duty from the next period
    time.sleep_ms(2)
    return p.duty_u16()
out = [read(), led()]
p.duty_u16({step}); out += [read(), led()]
p.duty_u16({3 * step - 1}); out += [read(), led()]
p.duty_u16(65535); out += [read(), led()]
p.duty_u16(65534); out += [read(), led()]
print(out)
"""
    out = run_chip(chip_root(tmp_path, board), code)
    below_full = 65534 // step * step
    assert out == [str([0, 0, step, step, 2 * step, 2 * step, 65535, 65536, below_full, below_full])]


def test_esp32_pwm_truncates_again_when_the_frequency_changes_and_reads_the_dividers_frequency(tmp_path):
    code = """import machine, time
p = machine.PWM(machine.Pin(25), freq=40000, duty_u16=32)
time.sleep_ms(2); out = [p.duty_u16(), p.freq()]
p.freq(1000); time.sleep_ms(2); out += [p.duty_u16(), p.freq()]
p.init(duty=1); time.sleep_ms(2); out += [p.duty_u16(), p.duty()]
print(out)
"""
    # The duty asked for is kept and cut to the new resolution (set_freq_duty); freq() is
    # ledc_get_freq(), from the divider: 1000 Hz at 16 bits divides 80 MHz by 313/256 * 65536.
    assert run_chip(chip_root(tmp_path, "esp32"), code) == ["[0, 40000, 32, 998, 64, 1]"]


def test_esp32_duty_u16_reads_a_new_duty_only_from_the_next_period(tmp_path):
    code = """import machine, time
p = machine.PWM(machine.Pin(25), freq=1, duty_u16=0)
time.sleep_ms(1010)
p.duty_u16(1000); now = p.duty_u16()
time.sleep_ms(1010)
print(now, p.duty_u16())
"""
    # ledc_get_duty() reads the duty register of the present cycle (1 s at 1 Hz); what was
    # written shows from the next one (ESP-IDF ledc.h).
    assert run_chip(chip_root(tmp_path, "esp32"), code) == ["0 1000"]


@pytest.mark.parametrize("board", ["esp32s3", "esp32c3"])
def test_esp32_s3_and_c3_pwm_refuse_frequencies_below_10_hz(tmp_path, board):
    code = """import machine
for f in (1, 4, 5, 9, 10):
    try:
        machine.PWM(machine.Pin(5), freq=f, duty_u16=0)
        print(f, "ok")
    except OSError as e:
        print(f, e.args)
"""
    # At 80 MHz no divider reaches 1-4 Hz (resolution 0: ESP_ERR_INVALID_ARG); at 5-9 Hz the
    # 14 bits found lose one and the divider needed then is out of range (ESP_FAIL). boards/*.json
    # say freq_min 10.
    out = run_chip(chip_root(tmp_path, board), code)
    assert out == ["1 (-258, 'ESP_ERR_INVALID_ARG')", "4 (-258, 'ESP_ERR_INVALID_ARG')", "5 (1, 'ESP_FAIL')",
                   "9 (1, 'ESP_FAIL')", "10 ok"]
    assert boards.load(board)["pwm"]["freq_min"] == 10


def test_esp8266_adc_reads_0_to_1024_and_read_u16_is_raw_times_65535_over_1024(tmp_path):
    code = """import machine
a = machine.ADC(0)
raw = a.read(); u16 = a.read_u16()
print(raw, u16, u16 == raw * 65535 // 1024, u16 >> 6)
"""
    root = chip_root(tmp_path, "esp8266")
    raw, u16, exact, shifted = run_chip(root, code, env={"LUXNODE_SIM_AMBIENT": "50"})[0].split()
    assert raw == "512" and exact == "True"  # the bench's 51..972, half way
    assert int(shifted) == int(raw) - 1  # why firmware must not take read_u16() >> 6 as the raw value
    full = run_chip(root, "import machine\nprint(machine.ADC(0).read())", env={"LUXNODE_SIM_AMBIENT": "100"})
    assert full == ["972"]


def test_esp32_adc_powers_up_at_its_maximum_attenuation(tmp_path):
    code = """import machine
a = machine.ADC(machine.Pin(34)); before = a.read()
a.atten(machine.ADC.ATTN_11DB); at_11 = a.read()
a.atten(machine.ADC.ATTN_0DB); at_0 = a.read()
print(before == at_11, at_0 > at_11)
"""
    assert run_chip(chip_root(tmp_path, "esp32"), code, env={"LUXNODE_SIM_AMBIENT": "30"}) == ["True True"]


@pytest.mark.parametrize("board, size", [("esp8266", 492), ("esp32", 2048)])
def test_rtc_memory_holds_what_the_port_gives(tmp_path, board, size):
    code = """import machine
r = machine.RTC()
r.memory(bytes(%d)); print(len(r.memory()))
try:
    r.memory(bytes(%d))
except ValueError as e:
    print("ValueError", e)
""" % (size, size + 1)
    assert run_chip(chip_root(tmp_path, board), code) == [str(size), "ValueError buffer too long"]


@pytest.mark.parametrize("board", ["esp32", "esp8266"])
def test_hostname_longer_than_32_characters_is_refused(tmp_path, board):
    code = """import network
network.hostname("h" * 32); print(len(network.hostname()))
try:
    network.hostname("h" * 33)
except ValueError:
    print("ValueError")
"""
    assert run_chip(chip_root(tmp_path, board), code) == ["32", "ValueError"]


SOCKOPT = """import socket
s = socket.socket()
print("raw numbers")
s.setsockopt(6, 1, 1)
print("by name")
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
print(socket.TCP_NODELAY, isinstance(s, __import__("usocket").socket))
"""


def test_esp8266_ignores_setsockopt_6_1_1_with_lwips_warning(tmp_path):
    out = run_chip(chip_root(tmp_path, "esp8266"), SOCKOPT)
    assert out == ["raw numbers", "Warning: lwip.setsockopt() not implemented", "by name", "64 True"]


def test_esp32_takes_setsockopt_6_1_1_as_tcp_nodelay(tmp_path):
    out = run_chip(chip_root(tmp_path, "esp32"), SOCKOPT + "s.setsockopt(6, 99, 1)\n")
    assert out == ["raw numbers", "by name", "1 True", "Warning: lwip.setsockopt() option not implemented"]


def test_name_lookup_blocks_for_the_delay_the_test_sets(tmp_path):
    code = """import socket, time
t = time.ticks_ms()
socket.getaddrinfo("localhost", 1883)
print(time.ticks_diff(time.ticks_ms(), t) >= 1200)
"""
    root = chip_root(tmp_path, "esp8266")
    assert run_chip(root, code, env={"LUXNODE_SIM_DNS_MS": "1200"}) == ["True"]
    assert run_chip(root, code) == ["False"]
    literal = code.replace('"localhost"', '"127.0.0.1"')  # an address needs no lookup
    assert run_chip(root, literal, env={"LUXNODE_SIM_DNS_MS": "1200"}) == ["False"]


@pytest.mark.parametrize("board", ["esp8266", "esp32"])
def test_heap_is_the_chips_once_the_board_is_loaded(tmp_path, board):
    """The frozen board's classes take heap the chips' C modules do not: the runner adds exactly that."""
    root = chip_root(tmp_path, board)
    binary = faithful_binary(board)
    heap = boards.load(board)["heap_bytes"]
    code = "import gc, machine, network, socket, time\ngc.collect()\nprint(gc.mem_free() + gc.mem_alloc())"
    total = int(run_chip(root, code, heap=heap + port.board_heap_overhead(binary, root))[0])
    # gc_init keeps 1/33 of the area for its allocation table; what is left is the chip's heap
    # less the same table: within 4 % of heap_bytes, and the board's share comes on top of it.
    assert heap * 0.96 <= total - port.board_heap_overhead(binary, root) <= heap
