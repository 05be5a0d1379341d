"""The whole node (boot.py, main.py, lux/) on the unix port with the simulated board,
against real mosquitto."""

import json
import subprocess
import time

import pytest

from tests.firmware.node import (Node, Observer, board_file, broker, needs_psk, node_config, nodes,  # noqa: F401
                                 observer)  # (fixtures)
from tests.support.net import wait_for


def test_node_announces_itself_and_obeys_commands(broker, observer, nodes, tmp_path):
    node = nodes(tmp_path / "fs", node_config(broker.port)).start()
    node.expect("luxnode: connected to 127.0.0.1")
    assert observer.expect("luxnode/node-1/status") == "online"
    sensor = observer.expect("homeassistant/sensor/node-1/light/config")
    assert sensor["stat_t"] == "luxnode/node-1/light" and sensor["avty_t"] == "luxnode/node-1/status"
    light = observer.expect("homeassistant/light/node-1/led/config")
    assert light["schema"] == "json" and light["cmd_t"] == "luxnode/node-1/set"
    assert light["qos"] == 1  # Home Assistant then sends its commands at QoS 1, as `set` is
    assert observer.expect("luxnode/node-1/state") == {
        "control": "PWM", "value": 0, "unit": "%", "duty": 0, "state": "OFF", "brightness": 0}
    first = observer.expect("luxnode/node-1/light")
    assert first["unit"] == "%" and first["light"] == pytest.approx(20, abs=1.5)  # the bench's ambient

    observer.publish("luxnode/node-1/set", json.dumps({"control": "PWM", "value": 100, "unit": "%"}))
    assert observer.expect("luxnode/node-1/state")["duty"] == 1
    # The LED adds its light: the sensor sees it.
    observer.expect("luxnode/node-1/light", lambda p: p["light"] > 80)

    observer.publish("luxnode/node-1/set", b'{"control":"PWM","value":"lots"}')
    assert observer.expect("luxnode/node-1/error") == {
        "error": "value must be a number", "payload": '{"control":"PWM","value":"lots"}'}
    observer.publish("luxnode/node-1/set", json.dumps({"state": "ON", "brightness": 51}))
    assert observer.expect("luxnode/node-1/state")["value"] == 20  # output unchanged until this good one
    assert observer.count("luxnode/node-1/error") == 1
    assert "luxnode: mqtt error" not in "\n".join(node.seen)  # the connection was kept
    assert broker.log_text().count("New client connected") == 2  # observer + node, once


def test_auto_holds_the_target_and_keeps_working_while_the_broker_is_away(broker, observer, nodes, tmp_path):
    node = nodes(tmp_path / "fs", node_config(broker.port)).start()
    observer.expect("luxnode/node-1/light")
    observer.publish("luxnode/node-1/set", json.dumps({"control": "AUTO", "value": 60, "unit": "%"}))
    assert observer.expect("luxnode/node-1/state")["target"] == 60
    observer.expect("luxnode/node-1/light", lambda p: abs(p["light"] - 60) < 1.0, timeout=20)
    broker.kill()
    node.expect("luxnode: mqtt error")
    node.control("ambient 45")  # brighter room while the broker is away: the loop must keep running
    node.expect("mqtt: connecting")
    broker.start()
    node.expect("luxnode: connected to", timeout=15)
    o2 = Observer(broker.port)
    try:
        state = o2.expect("luxnode/node-1/state")
        assert state["control"] == "AUTO" and state["target"] == 60
        o2.expect("luxnode/node-1/light", lambda p: abs(p["light"] - 60) < 1.0, timeout=20)
        o2.expect("luxnode/node-1/state", lambda s: s["duty"] < 0.3, timeout=20)  # less LED for more daylight
    finally:
        o2.close()


def test_last_state_survives_a_reboot_and_is_saved_once(broker, observer, nodes, tmp_path):
    root = tmp_path / "fs"
    node = nodes(root, node_config(broker.port, dimmer__save_delay_s=1)).start()
    observer.expect("luxnode/node-1/state")
    for value in (10, 30, 70):
        observer.publish("luxnode/node-1/set", json.dumps({"control": "PWM", "value": value}))
    observer.expect("luxnode/node-1/state", lambda s: s["value"] == 70)
    wait_for(lambda: (root / "state.json").exists(), what="state.json")
    saved = json.loads((root / "state.json").read_text())
    assert saved == {"control": "PWM", "value": 70, "last_on": 70}
    mtime = (root / "state.json").stat().st_mtime_ns
    observer.publish("luxnode/node-1/set", json.dumps({"control": "OFF"}))
    observer.publish("luxnode/node-1/set", json.dumps({"control": "ON"}))  # back to 70 %: nothing new to save
    observer.expect("luxnode/node-1/state", lambda s: s["value"] == 70 and s["state"] == "ON")
    node.stop()
    assert (root / "state.json").stat().st_mtime_ns == mtime
    observer.publish("luxnode/node-1/state", b"", retain=True)  # only the rebooted node can tell now
    again = nodes(root, node_config(broker.port)).start()
    again.expect("luxnode: connected to")
    o2 = Observer(broker.port)
    try:
        assert o2.expect("luxnode/node-1/state", lambda s: s != "")["value"] == 70
    finally:
        o2.close()


def test_psk_on_a_board_without_it_stops_loudly(broker, nodes, tmp_path):
    cfg = node_config(broker.port, board="esp8266")
    cfg["mqtt"]["tls"] = {"mode": "psk", "identity": "node-1", "key": "00" * 32}
    node = nodes(tmp_path / "fs", cfg, board="esp8266").start()
    assert node.wait_exit() != 0
    out = "\n".join(node.seen)
    assert 'luxnode: config error: config.json: mqtt.tls.mode "psk" but board esp8266 has no TLS-PSK' in out
    assert "connecting" not in out and "New client" not in broker.log_text()


@pytest.mark.parametrize("change, message", [
    (dict(dimmer__freq=90000), "config.json: dimmer.freq must be within 1..{freq_max}, not 90000"),
    (dict(mqtt__keepalive="60"), "config.json: mqtt.keepalive must be an integer"),
    (dict(wdt_s=3), "config.json: wdt_s must be 0 (no watchdog) or at least 10"),
    (dict(mqtt__rx_buffer=200), "config.json: mqtt.rx_buffer must be within 283..16384, not 200"),
    (dict(device_id="a/b"), "config.json: device_id 'a/b' is not usable in an MQTT topic"),
])
def test_bad_config_names_the_key(broker, nodes, tmp_path, change, message):
    cfg = node_config(broker.port)
    for key, value in change.items():
        section, _, leaf = key.partition("__")
        if leaf:
            cfg[section][leaf] = value
        else:
            cfg[section] = value
    node = nodes(tmp_path / "fs", cfg).start()
    assert node.wait_exit() != 0
    assert message.format(**board_file(node.board)["pwm"]) in "\n".join(node.seen)
    assert "connecting" not in "\n".join(node.seen)


def test_boot_loop_ends_in_safe_mode(broker, nodes, tmp_path):
    root = tmp_path / "fs"
    node = nodes(root, node_config(broker.port))
    (root / ".rtc").write_bytes(b"LXB\x03")  # three boots that never ran stable
    node.start(LUXNODE_SIM_RESET_CAUSE="WDT_RESET")
    assert node.wait_exit() == 0
    assert "luxnode: safe mode (3 boots in a row without a stable run)" in "\n".join(node.seen)
    assert (root / ".rtc").read_bytes() == b"LXB\x00"  # the next reset tries the application again
    normal = nodes(root, node_config(broker.port)).start(LUXNODE_SIM_RESET_CAUSE="WDT_RESET")
    normal.expect("luxnode: connected to")
    assert (root / ".rtc").read_bytes() == b"LXB\x01"


def test_telemetry_comes_with_the_connect_not_a_period_later(broker, observer, nodes, tmp_path):
    nodes(tmp_path / "fs", node_config(broker.port, telemetry_s=3600)).start()
    observer.expect("luxnode/node-1/state")
    assert observer.expect("luxnode/node-1/telemetry", timeout=10.0)["uptime_s"] < 60


def test_oversize_command_and_telemetry(broker, observer, nodes, tmp_path):
    node = nodes(tmp_path / "fs", node_config(broker.port, telemetry_s=1)).start()
    observer.expect("luxnode/node-1/state")
    telemetry = observer.expect("luxnode/node-1/telemetry")
    assert set(telemetry) == {"uptime_s", "rssi", "free_heap", "reconnects", "version"}
    assert telemetry["rssi"] == -55 and telemetry["reconnects"] == 0 and telemetry["free_heap"] > 0
    big = b'{"control":"PWM","value":50,"pad":"' + b"x" * 2000 + b'"}'
    observer.publish("luxnode/node-1/set", big)  # larger than the node's receive buffer
    error = observer.expect("luxnode/node-1/error")
    assert error == {"error": f"payload too large ({len(big)} bytes, max 256)", "payload": big[:64].decode()}
    observer.publish("luxnode/node-1/set", b'{"control":"PWM","value":5}')
    assert observer.expect("luxnode/node-1/state")["value"] == 5  # the stream stayed in step
    assert observer.count("luxnode/node-1/error") == 1
    assert "mqtt error" not in "\n".join(node.seen)
    later = observer.expect("luxnode/node-1/telemetry")
    assert later["uptime_s"] > telemetry["uptime_s"]  # the first comes with the connect, the next a period on


def test_esp8266_board_inverts_in_software_and_reads_its_10_bit_adc(broker, observer, nodes, tmp_path):
    # The ESP8266 PWM has no invert (the simulated board refuses the keyword as the
    # port does) and its ADC has 10 bits and no attenuation: same firmware, board.json decides.
    cfg = node_config(broker.port, board="esp8266", sensor={"interval_s": 1, "dark_raw": 50, "bright_raw": 975,
                                                            "sample_ms": 100})
    cfg["dimmer"]["freq"] = 500
    node = nodes(tmp_path / "fs", cfg, board="esp8266").start()
    dark = observer.expect("luxnode/node-1/light")
    assert dark["light"] == pytest.approx(20, abs=1.5) and dark["raw"] < 1024
    observer.publish("luxnode/node-1/set", json.dumps({"control": "PWM", "value": 100}))
    observer.expect("luxnode/node-1/light", lambda p: p["light"] > 80)
    observer.publish("luxnode/node-1/set", json.dumps({"control": "OFF"}))
    observer.expect("luxnode/node-1/light", lambda p: p["light"] < 22)
    assert "Traceback" not in "\n".join(node.seen)


@needs_psk
def test_node_over_tls_psk_with_credentials(mosquitto, nodes, tmp_path):
    key = "a1" * 32
    (tmp_path / "psk").write_text(f"node-1:{key}\n")
    passwd = tmp_path / "passwd"
    passwd.write_text("node-1:secret\n")
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
    psk_broker = mosquitto(f"allow_anonymous false\npassword_file {passwd}\n"
                           f"psk_hint luxnode\npsk_file {tmp_path / 'psk'}\nuse_identity_as_username false\n")
    cfg = node_config(psk_broker.port)
    cfg["mqtt"].update(username="node-1", password="secret",
                       tls={"mode": "psk", "identity": "node-1", "key": key})
    node = nodes(tmp_path / "fs", cfg).start()
    node.expect("luxnode: connected to")
    got = subprocess.run(["mosquitto_sub", "-p", str(psk_broker.port), "--psk", key, "--psk-identity", "node-1",
                          "-u", "node-1", "-P", "secret", "-t", "luxnode/node-1/status", "-C", "1", "-W", "10"],
                         capture_output=True, text=True, timeout=15)
    assert got.stdout.strip() == "online"
    log = psk_broker.log_text()
    assert "as luxnode-node-1 (p2, c0, k10, u'node-1')" in log  # MQTT 3.1.1, persistent session


def test_a_burst_of_commands_longer_than_the_keepalive(mosquitto, nodes, tmp_path):
    # /work/shared/seeds 000: a burst of incoming messages longer than the keepalive got
    # the node dropped. Here 30000 commands (every 7th bad) take longer than the keepalive.
    broker = mosquitto("allow_anonymous true\nmax_queued_messages 0\n")
    observer = Observer(broker.port)
    try:
        cfg = node_config(broker.port)
        cfg["mqtt"]["keepalive"] = 1  # mosquitto drops a client silent for 1.5 s
        node = nodes(tmp_path / "fs", cfg).start()
        node.expect("luxnode: connected to")
        observer.expect("luxnode/node-1/state")
        count = 30000
        lines = [b"bad" if i % 7 == 0 else json.dumps({"control": "PWM", "value": i % 100}).encode()
                 for i in range(1, count + 1)]
        started = time.monotonic()
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "luxnode/node-1/set", "-q", "1", "-l"],
                       input=b"\n".join(lines) + b"\n", check=True, timeout=60)
        last = json.loads(lines[-1])["value"]
        observer.expect("luxnode/node-1/state", lambda s: s["value"] == last, timeout=60)
        took = time.monotonic() - started
        assert took > 1.5, f"the burst took only {took:.1f} s"
        wait_for(lambda: observer.count("luxnode/node-1/error") == count // 7, what="one error per bad command")
        assert "mqtt error" not in node.drain()
        assert broker.log_text().count("New client connected from") == 3  # observer, node, publisher: once each
    finally:
        observer.close()
