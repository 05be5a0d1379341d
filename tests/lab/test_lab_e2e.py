"""`luxnode lab` end to end: the real broker, simulated nodes, the dashboard in headless Chromium.

One lab per test module (starting one costs seconds); the tests run in order and
the last one stops it with Ctrl-C and checks that nothing is left behind.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import paho.mqtt.client as paho
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.lab.labrun import ARTIFACTS, LabCommand, Operator, chromium, processes_under
from tests.support.net import wait_for

SIM_IDS = ["sim-1", "sim-2", "sim-3"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("lab") / "home"
    with LabCommand(home) as lab:  # on leaving, kills only what a failed test left running
        lab.wait_line("3/3 nodes online", timeout=90)
        yield lab


@pytest.fixture(scope="module")
def operator(lab):
    op = Operator(lab)
    yield op
    op.close()


@pytest.fixture(scope="module")
def browser(lab):
    driver = chromium()
    driver.get(lab.url)
    yield driver
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def card(browser, device_id):
    return browser.find_element(By.CSS_SELECTOR, f'article.node[data-node="{device_id}"]')


def field(browser, device_id, name):
    return card(browser, device_id).find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text


def test_banner_names_the_urls_and_the_credentials_file(lab):
    out = lab.output()
    registry = lab.registry()
    token = registry["accounts"]["dashboard"]["page_token"]
    assert f"http://127.0.0.1:{lab.ports['http_port']}/?token={token}" in out
    assert f"ws://127.0.0.1:{lab.ports['ws_port']}/mqtt" in out
    assert f"credentials  {lab.home / 'registry.json'}" in out
    assert f"port {lab.ports['port']}, username homeassistant" in out
    assert f"LUXNODE_HOME={lab.home} luxnode accounts homeassistant --show-secrets" in out  # this lab's home
    assert f"LUXNODE_HOME={lab.home} luxnode watch" in out
    for account in (registry["operator"], *registry["accounts"].values()):
        assert account["password"] not in out  # secrets stay in the 0600 file
    assert sorted(registry["devices"]) == SIM_IDS
    assert (lab.home / "registry.json").stat().st_mode & 0o777 == 0o600


def test_a_local_user_without_the_token_gets_no_password(lab):
    for path in ("config.json", "recent.json"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{lab.ports['http_port']}/{path}", timeout=5)
        body = refused.value.read()
        assert refused.value.code == 403 and b"password" not in body and b"printed" in body


def test_accounts_prints_a_password_only_when_asked(lab):
    run = lambda *argv: subprocess.run([sys.executable, "-m", "luxnode", "accounts", *argv], env=lab.env,
                                       capture_output=True, text=True, timeout=60)
    ha = lab.registry()["accounts"]["homeassistant"]
    listed = run()
    assert listed.returncode == 0 and "homeassistant" in listed.stdout and "dashboard" in listed.stdout
    assert ha["password"] not in listed.stdout and "--show-secrets" in listed.stdout
    shown = run("homeassistant", "--show-secrets")
    assert shown.returncode == 0 and f"password {ha['password']}" in shown.stdout
    assert lab.registry()["operator"]["password"] not in shown.stdout  # only the account asked for
    unknown = run("nobody")
    assert unknown.returncode != 0 and "no account 'nobody'" in unknown.stderr


def subscribe_as(lab, account, filters):
    """Granted QoS (or 0x80) per filter for ``account`` on the lab's password listener."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.username_pw_set(account["username"], account["password"])
    granted = {}
    client.on_subscribe = lambda c, u, mid, codes, props: granted.update(zip(filters, (c.value for c in codes)))
    client.connect("127.0.0.1", lab.ports["port"])
    client.loop_start()
    try:
        client.subscribe([(f, 1) for f in filters])
        return wait_for(lambda: dict(granted) if len(granted) == len(filters) else None, 10, what="SUBACK")
    finally:
        client.disconnect()
        client.loop_stop()


def test_each_tool_has_its_own_rights(lab, operator):
    accounts = lab.registry()["accounts"]
    ha = subscribe_as(lab, accounts["homeassistant"], [
        "homeassistant/#", "luxnode/+/state", "luxnode/+/light", "luxnode/+/status", "luxnode/+/error", "$SYS/#"])
    assert ha == {"homeassistant/#": 1, "luxnode/+/state": 1, "luxnode/+/light": 1, "luxnode/+/status": 1,
                  "luxnode/+/error": 0x80, "$SYS/#": 0x80}
    dash = subscribe_as(lab, accounts["dashboard"], [
        "luxnode/+/status", "luxnode/+/telemetry", "luxnode/+/error", "homeassistant/#", "$SYS/#"])
    assert dash == {"luxnode/+/status": 1, "luxnode/+/telemetry": 1, "luxnode/+/error": 1,
                    "homeassistant/#": 0x80, "$SYS/#": 0x80}
    # Writes: the dashboard sends commands, not the simulated light (the operator's tool does).
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.username_pw_set(accounts["dashboard"]["username"], accounts["dashboard"]["password"])
    client.connect("127.0.0.1", lab.ports["port"])
    client.loop_start()
    try:
        client.publish("luxnode/sim-1/sim/ambient", "90", qos=1).wait_for_publish(10)
        client.publish("luxnode/nosuch/set", '{"control":"OFF"}', qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    # In order: once the allowed command arrived, the refused one would have arrived before it.
    wait_for(lambda: "luxnode/nosuch/set" in operator.latest, 10, what="the dashboard's command")
    assert "luxnode/sim-1/sim/ambient" not in operator.latest


def test_page_lists_the_simulated_nodes_online(browser):
    wait_for(lambda: [c.get_attribute("data-node") for c in browser.find_elements(By.CSS_SELECTOR, "article.node")]
             == SIM_IDS, 20, what="three node cards in order")
    for device_id in SIM_IDS:
        wait_for(lambda: field(browser, device_id, "status") == "online", 20, what=f"{device_id} online")
        wait_for(lambda: field(browser, device_id, "light") not in ("", "–"), 20, what=f"{device_id} light")
    assert browser.find_element(By.ID, "broker").get_attribute("data-state") == "connected"
    # The token went into a cookie; the address bar no longer shows it.
    assert "token" not in browser.current_url
    labels = [s.text for s in card(browser, "sim-1").find_elements(By.CSS_SELECTOR, ".y-axis span")]
    assert labels == ["100", "75", "50", "25", "0"]


def test_moving_a_slider_changes_the_nodes_state(browser, operator):
    slider = card(browser, "sim-2").find_element(By.CSS_SELECTOR, '[data-control="pwm"]')
    # Drag from the left end to about three quarters, as a hand would.
    width = slider.size["width"]
    ActionChains(browser).move_to_element_with_offset(slider, -width // 2 + 2, 0).click_and_hold() \
        .move_by_offset(width * 3 // 4, 0).release().perform()
    chosen = int(slider.get_attribute("value"))
    assert 60 <= chosen <= 90
    wait_for(lambda: (operator.state("sim-2") or {}).get("value") == chosen, 15,
             what=f"sim-2's retained state to show {chosen} %")
    assert operator.state("sim-2")["control"] == "PWM"
    wait_for(lambda: field(browser, "sim-2", "led") == str(chosen), 10, what="the page to show the new LED level")
    assert operator.state("sim-1")["value"] == 0  # the other nodes are untouched


def test_chart_follows_the_light_level(browser):
    chart = card(browser, "sim-2").find_element(By.CSS_SELECTOR, "svg.chart")
    line = chart.find_element(By.CSS_SELECTOR, '[data-series="light"]')
    samples = int(chart.get_attribute("data-samples"))
    points = line.get_attribute("points")
    # The simulated sensor sees the LED: after the slider moved, the light level moves too.
    wait_for(lambda: int(chart.get_attribute("data-samples")) > samples, 20, what="a new light sample on the chart")
    assert line.get_attribute("points") != points
    led_points = chart.find_element(By.CSS_SELECTOR, '[data-series="led"]').get_attribute("points")
    assert len(led_points.split()) >= 3


def test_auto_switch_sends_the_target(browser, operator):
    node = card(browser, "sim-1")
    target = node.find_element(By.CSS_SELECTOR, '[data-control="target"]')
    target.clear()
    target.send_keys("45")
    node.find_element(By.CSS_SELECTOR, '[data-control="auto"]').click()
    wait_for(lambda: (operator.state("sim-1") or {}).get("control") == "AUTO", 15, what="sim-1 in AUTO")
    assert operator.state("sim-1")["target"] == 45
    wait_for(lambda: field(browser, "sim-1", "mode") == "AUTO → 45%", 10, what="the page to show AUTO")


def test_a_rejected_command_shows_as_the_last_error(browser, operator):
    # Out of range: the node keeps its output and publishes an error, which the page shows.
    operator.client.publish(f"{operator.prefix}/sim-2/set", '{"control":"PWM","value":150,"unit":"%"}', qos=1)
    wait_for(lambda: field(browser, "sim-2", "error"), 15, what="the error on sim-2's card")
    assert "150" in field(browser, "sim-2", "error")
    assert field(browser, "sim-2", "status") == "online"


def test_a_board_provisioned_against_the_lab_appears_beside_the_sim_nodes(lab, browser, tmp_path):
    # Provisioned as a board is (luxnode provision), here into a folder booted by luxnode sim.
    folder = tmp_path / "bench-1"
    folder.mkdir()
    shutil.copy(lab.home / "sim" / "sim-1" / "board.json", folder / "board.json")
    run = lambda *argv: subprocess.run([sys.executable, "-m", "luxnode", *argv], env=lab.env,
                                       capture_output=True, text=True, timeout=60)
    provisioned = run("provision", "--fs", str(folder), "--device-id", "bench-1", "--wifi-ssid", "lab",
                      "--broker", f"127.0.0.1:{lab.ports['psk_port']}", "--board", "sim")
    assert provisioned.returncode == 0, provisioned.stderr
    config = json.loads((folder / "config.json").read_text())
    config["telemetry_s"] = 1  # the bench's own setting; the default minute is too long for a test
    (folder / "config.json").write_text(json.dumps(config))
    node = subprocess.Popen([sys.executable, "-m", "luxnode", "sim", "--fs", str(folder)], env=lab.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, 'article.node[data-node="bench-1"]'), 30,
                 what="bench-1 to appear on the page")
        wait_for(lambda: field(browser, "bench-1", "status") == "online", 20, what="bench-1 online")
        wait_for(lambda: "firmware " in field(browser, "bench-1", "telemetry"), 20, what="bench-1's telemetry")
        assert " reconnects" in field(browser, "bench-1", "telemetry")
    finally:
        os.kill(node.pid, signal.SIGINT)
        try:
            node.wait(20)
        finally:
            if node.poll() is None:  # never leave the node running, even when Ctrl-C failed
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(10)


def test_set_and_watch_find_the_lab_through_the_registry(lab, browser, operator):
    run = lambda *argv: subprocess.run([sys.executable, "-m", "luxnode", *argv], env=dict(lab.env, COLUMNS="120"),
                                       capture_output=True, text=True, timeout=60)
    result = run("set", "sim-1", "25")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sim-1: PWM, LED at 25 %"
    # `set` saw the state on its own connection; the operator's arrives on another, maybe later.
    wait_for(lambda: (operator.state("sim-1") or {}).get("value") == 25, 10, what="the operator to see sim-1 at 25 %")
    wait_for(lambda: field(browser, "sim-1", "led") == "25", 10, what="the page to follow luxnode set")
    result = run("watch", "--once")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if " sim-1 " in line)
    assert "online" in row and " 25 " in row and "PWM" in row


def test_a_reload_keeps_the_charts_the_telemetry_and_the_last_error(lab, browser):
    """What happened before the page opened comes from the lab's bounded history."""
    browser.refresh()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, 'article.node[data-node="bench-1"]'), 10,
             what="the cards after the reload")
    # At once, from history: before the next light message could have come (every 5 s at most).
    chart = card(browser, "sim-2").find_element(By.CSS_SELECTOR, "svg.chart")
    assert int(chart.get_attribute("data-samples")) >= 3
    assert "150" in field(browser, "sim-2", "error")
    assert "firmware " in field(browser, "bench-1", "telemetry")  # bench-1 is gone, its telemetry stays


def test_stopping_a_node_turns_it_offline_on_the_page(lab, browser, capsys):
    for pid in lab.node_pids("sim-3"):
        os.kill(pid, signal.SIGKILL)  # pull the plug: the broker publishes the node's will
    wait_for(lambda: field(browser, "sim-3", "status") == "offline", 30, what="sim-3 offline on the page")
    assert card(browser, "sim-3").get_attribute("data-online") == "false"
    # The lab notes when it last saw the node online, for `luxnode devices`.
    wait_for(lambda: "last_seen" in lab.registry()["devices"]["sim-3"], 10, what="sim-3's last_seen in the registry")
    assert field(browser, "sim-1", "status") == "online"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lab-dashboard.png"
    browser.save_screenshot(str(shot))
    with capsys.disabled():  # shown in every run, not only on failure
        print(f"\nscreenshot of the dashboard: {shot}")
    assert shot.stat().st_size > 10_000


def test_ctrl_c_stops_nodes_then_broker_and_leaves_nothing(lab):
    broker_pid = lab.broker_pid
    assert lab.interrupt() == 0, lab.output()
    assert "luxnode lab: stopped" in lab.output()
    assert processes_under(lab.home) == []
    with pytest.raises(ProcessLookupError):
        os.kill(broker_pid, 0)
    # The nodes were gone before the broker: their connections closed, then the broker ended.
    log = (lab.home / "broker.log").read_text().splitlines()
    end = next(i for i, line in enumerate(log) if "terminat" in line)
    for device_id in ("sim-1", "sim-2"):
        # The node listener's use_username_as_clientid makes the node's client id its identity.
        own = re.compile(rf"(?<![\w-]){device_id}(?![\w-])")
        last = max(i for i, line in enumerate(log) if own.search(line))
        assert last < end and ("closed" in log[last] or "disconnected" in log[last]), \
            f"{device_id} was still connected when the broker stopped:\n" + "\n".join(log[-20:])
    assert not (lab.home / "broker.pid").exists()
    assert all("last_seen" in lab.registry()["devices"][d] for d in ("sim-1", "sim-2"))  # online until the end
