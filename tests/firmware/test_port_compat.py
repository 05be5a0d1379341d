"""Firmware against what the real ports' TLS offers. The ESP8266 build uses axTLS
(extmod/modtls_axtls.c): SSLContext has load_cert_chain and wrap_socket only,
verify_mode is CERT_NONE and cannot change, no CERT_REQUIRED, no PSK. The
simulated board's model of it (sim/board/_axtls.py) takes the place of the unix
port's mbedTLS `tls` here (a built-in `tls` is not extensible, so it goes in
through sys.modules, as the simulated ESP8266's machine.py does)."""

import json

from tests.firmware.node import SIM_BOARD
from tests.support.micropython import FIRMWARE, run


SHADOW = "import sys, _axtls\nsys.modules['tls'] = _axtls\n"

CODE = SHADOW + """
from lux import config
cfg = config.load()
try:
    config.tls_context(cfg)
    print("accepted")
except config.ConfigError as e:
    print(e)
"""


def node(tmp_path, tls, board_caps):
    (tmp_path / "ca.der").write_bytes(b"0\x82")
    board = {"name": "esp8266", "adc": {"pin": 0, "bits": 10, "atten_db": None},
             "pwm": {"pin": 14, "freq_min": 1, "freq_max": 1000}, "capabilities": board_caps}
    (tmp_path / "board.json").write_text(json.dumps(board))
    (tmp_path / "config.json").write_text(json.dumps(
        {"device_id": "n1", "board": "esp8266", "mqtt": {"host": "h", "tls": tls}}))
    return run(CODE, path=(tmp_path, SIM_BOARD, FIRMWARE), cwd=tmp_path).strip()


def test_the_shadow_really_lacks_verification(tmp_path):
    out = run(SHADOW + "import tls\nc = tls.SSLContext(0)\nprint(hasattr(tls, 'CERT_REQUIRED'),"
              " hasattr(c, 'load_verify_locations'))\ntry:\n c.psk_key = b'k'\nexcept AttributeError:\n"
              " print('no psk')", path=(SIM_BOARD,))
    assert out.split("\n")[:2] == ["False False", "no psk"]


def test_cert_mode_on_axtls_refuses_instead_of_connecting_unverified(tmp_path):
    out = node(tmp_path, {"mode": "cert", "ca": "ca.der"}, {"tls_psk": False})
    assert out == ('mqtt.tls.mode "cert" but this MicroPython\'s TLS cannot verify a certificate'
                   ' (axTLS); refusing to connect unverified')


def test_psk_on_a_tls_without_psk_is_a_config_error(tmp_path):
    # even where the board file claims PSK, the port's tls has the last word
    out = node(tmp_path, {"mode": "psk", "key": "00" * 32}, {"tls_psk": True})
    assert out.startswith('mqtt.tls.mode "psk" but this MicroPython has no TLS-PSK')


# The ESP8266's watchdog period is fixed: MicroPython refuses any timeout but
# 5000 ms with ValueError (ports/esp8266/machine_wdt.c); the simulated board does too.

def test_esp8266_node_runs_with_the_ports_fixed_watchdog(mosquitto, tmp_path):
    from tests.firmware.node import Node, node_config

    broker = mosquitto("allow_anonymous true\n")
    cfg = node_config(broker.port, board="esp8266", wdt_s=30,
                      sensor__dark_raw=50, sensor__bright_raw=970, dimmer__invert=False)
    node = Node(tmp_path / "fs", cfg, board="esp8266").start()
    try:
        node.expect("luxnode: watchdog: the port's fixed period, not wdt_s")
        node.expect("luxnode: connected to")
    finally:
        node.stop()


def test_simulated_esp8266_node_in_cert_mode_stops_loudly(tmp_path):
    from tests.firmware.node import Node, node_config

    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "ca.der").write_bytes(b"0\x82")
    cfg = node_config(1, board="esp8266", sensor__dark_raw=50, sensor__bright_raw=970,
                      dimmer__invert=False, mqtt__tls={"mode": "cert", "ca": "ca.der"})
    node = Node(tmp_path / "fs", cfg, board="esp8266").start()
    try:
        assert node.wait_exit() != 0
        out = "\n".join(node.seen)
        assert "luxnode: config error: mqtt.tls.mode \"cert\" but this MicroPython's TLS cannot verify" in out
        assert "connecting" not in out
    finally:
        node.stop()
