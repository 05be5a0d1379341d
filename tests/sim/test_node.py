"""The node supervisor (luxnode.sim.SimNode) with small stand-in programs for the firmware.
Under LUXNODE_FAITHFUL=<chip> it supervises them on that chip's board-faithful build."""

import json
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from luxnode import boards
from luxnode.sim import SimNode, port, stop_nodes
from luxnode.sim import start_nodes as start_sim_nodes
from luxnode.sim.fsroot import node_config, write_root
from tests.sim.harness import process_gone
from tests.support.micropython import FAITHFUL
from tests.support.net import wait_for

BOARD = FAITHFUL or "sim"
ESP8266 = FAITHFUL == "esp8266"


def sim_node(*args, **kw):
    """A SimNode, on the faithful chip's build under LUXNODE_FAITHFUL."""
    return SimNode(*args, faithful=bool(FAITHFUL), **kw)


def start_nodes(*args, **kw):
    return start_sim_nodes(*args, faithful=bool(FAITHFUL), **kw)


def root_with(tmp_path, main, name="node-1"):
    root = write_root(tmp_path / name, node_config(name, "127.0.0.1", 1, board=BOARD))
    (root / "boot.py").write_text("")
    (root / "main.py").write_text(textwrap.dedent(main))
    (root / "lux").mkdir()
    return root


LOOP = """
import json, machine, time
wired = json.load(open("board.json"))["adc"]
if wired["atten_db"] is None:  # the ESP8266's one ADC, without attenuation
    adc = machine.ADC(0)
else:
    adc = machine.ADC(machine.Pin(wired["pin"])); adc.atten(machine.ADC.ATTN_11DB)
print("booted", "power-on" if machine.reset_cause() == machine.PWRON_RESET else machine.reset_cause())
last = None
while True:
    raw = adc.read() * 100 // ((1 << wired["bits"]) - 1)   # 1 % steps
    if raw != last:
        print("raw", raw); last = raw
    time.sleep_ms(20)
"""


def test_output_is_prefixed_and_ambient_reaches_the_board(tmp_path):
    seen = []
    root = root_with(tmp_path, LOOP)
    with sim_node(root, ambient=10, output=seen.append, bridge=False,
                 env={"LUXNODE_SIM_NOISE": "0"}) as node:
        node.wait_line("booted power-on")
        mark = node.count
        node.set_ambient(60)
        sensor = json.loads((root / "config.json").read_text())["sensor"]
        top = (1 << json.loads((root / "board.json").read_text())["adc"]["bits"]) - 1
        at_60 = sensor["dark_raw"] + (sensor["bright_raw"] - sensor["dark_raw"]) * 60 // 100
        node.wait_line(f"raw {at_60 * 100 // top}", after=mark)
        assert "[node-1] booted power-on" in seen
        interpreter = next(line for line in seen if "sim: micropython" in line)
        assert ("(32-bit)" in interpreter) == bool(FAITHFUL), interpreter  # the faithful build when asked
    assert not node.alive()


def test_reset_boots_again_with_its_cause_and_rtc_memory_survives(tmp_path):
    root = root_with(tmp_path, """
        import machine
        rtc = machine.RTC()
        names = {machine.PWRON_RESET: "power-on", machine.SOFT_RESET: "soft", machine.HARD_RESET: "hard"}
        print("cause", names.get(machine.reset_cause()), rtc.memory())
        if machine.reset_cause() == machine.PWRON_RESET:
            rtc.memory(b"before reset")
            machine.reset()
        print("done")
        while True:
            machine.idle()
    """)
    with sim_node(root, output=lambda line: None, bridge=False) as node:
        node.wait_line("done")
        # machine.reset() comes back as SOFT_RESET on an ESP8266, as HARD_RESET on the ESP32 family.
        assert [line for line in node.lines if line.startswith("cause")] == [
            "cause power-on b''", f"cause {'soft' if ESP8266 else 'hard'} b'before reset'"]
        assert node.resets == ["SOFT_RESET" if ESP8266 else "HARD_RESET"]


def test_a_watchdog_that_is_not_fed_resets_the_board(tmp_path):
    # The ESP8266 port accepts only WDT(timeout=5000) and resets 1.6-3.2 s after the last
    # feed (ports/esp8266/machine_wdt.c, ets_alt_task.c).
    root = root_with(tmp_path, """
        import machine, time
        print("cause", machine.reset_cause())
        if machine.reset_cause() == machine.WDT_RESET:
            while True:
                time.sleep_ms(100)
        wdt = machine.WDT(timeout=%d)
        for i in range(5):          # fed: no reset
            time.sleep_ms(150); wdt.feed()
        print("stuck")
        while True:
            time.sleep_ms(100)      # no longer fed
    """ % (5000 if ESP8266 else 300))
    with sim_node(root, output=lambda line: None, bridge=False) as node:
        node.wait_line("cause 3")  # WDT_RESET on an ESP32, REASON_SOFT_WDT_RST on an ESP8266
        assert node.resets == ["SOFT_WDT_RESET" if ESP8266 else "WDT_RESET"]
        timeout = next(i for i, line in enumerate(node.lines) if line.startswith("machine: watchdog timeout"))
        assert node.lines.index("stuck") < timeout


def test_a_node_that_ends_reports_its_exit_code(tmp_path):
    root = root_with(tmp_path, "raise ValueError('broken firmware')\n")
    node = sim_node(root, output=lambda line: None, bridge=False).start()
    try:
        wait_for(lambda: not node.alive(), what="the node to end")
        assert node.exit_code == 1
        node.wait_line("ValueError: broken firmware")
        node.wait_line("node exited with code 1")
    finally:
        node.stop()


def test_stop_ends_every_node_and_its_process_group(tmp_path):
    roots = [root_with(tmp_path, LOOP, f"n{i}") for i in range(3)]
    nodes = start_nodes(roots, output=lambda line: None, bridge=False)
    for node in nodes:
        node.wait_line("booted")
    pids = [node.pid for node in nodes]
    stop_nodes(nodes)
    assert all(process_gone(pid) for pid in pids)
    assert not any(node.alive() for node in nodes)


def test_log_name_writes_each_nodes_output_into_its_folder(tmp_path):
    root = root_with(tmp_path, LOOP)
    (node,) = start_nodes([root], log_name="node.log", bridge=False)
    try:
        node.wait_line("booted")
    finally:
        stop_nodes([node])
    assert "[node-1] booted power-on" in (root / "node.log").read_text()


PARENT = """
import sys, time
from luxnode.sim import start_nodes
nodes = start_nodes(sys.argv[1:], output=lambda line: None, bridge=False, faithful=%r)
for node in nodes:
    node.wait_line("booted")
print(" ".join(str(node.pid) for node in nodes), flush=True)
time.sleep(60)
""" % bool(FAITHFUL)


def test_nodes_die_with_a_parent_that_is_killed(tmp_path):
    roots = [str(root_with(tmp_path, LOOP, f"n{i}")) for i in range(2)]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *roots], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and not any(process_gone(pid) for pid in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: all(process_gone(pid) for pid in pids), what="the nodes to die with their parent")
    finally:
        parent.kill()
        parent.wait()


def test_missing_or_broken_config_is_a_clear_error(tmp_path):
    from luxnode.errors import LuxnodeError
    with pytest.raises(LuxnodeError, match="config.json not found"):
        sim_node(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(LuxnodeError, match="not valid JSON"):
        sim_node(tmp_path)


# A chip whose BOOT button (the safe-mode pin) is a strapping pin: pressed after reset.
CHIP = FAITHFUL or "esp32"
BOOT_PIN = boards.load(CHIP)["safe_mode_pin"]


def chip_node(tmp_path, **env):
    root = write_root(tmp_path / "node-1", node_config("node-1", "127.0.0.1", 1, board=CHIP))
    return sim_node(root, output=lambda line: None, bridge=False, env=env)


def test_the_firmware_enters_safe_mode_when_its_button_is_pressed_after_reset(tmp_path):
    with chip_node(tmp_path, LUXNODE_SIM_PRESSED=f"{BOOT_PIN}@300") as node:
        node.wait_line(f"safe mode (pin {BOOT_PIN} held low at boot)")
        assert any(f"hold BOOT (pin {BOOT_PIN}) now for safe mode" in line for line in node.lines)
        assert not any("mqtt" in line for line in node.lines)


def test_a_button_pressed_after_the_boot_window_leaves_the_application_running(tmp_path):
    with chip_node(tmp_path, LUXNODE_SIM_PRESSED=f"{BOOT_PIN}@4000") as node:
        node.wait_line("mqtt: connecting to 127.0.0.1", timeout=20)
        assert not any("safe mode (" in line for line in node.lines)


def test_the_boot_button_held_through_reset_starts_the_roms_bootloader_not_the_node(tmp_path):
    with chip_node(tmp_path, LUXNODE_SIM_HELD=str(BOOT_PIN)) as node:
        node.wait_line("machine: waiting for download")
        assert not any("luxnode:" in line for line in node.lines)


def test_the_interpreter_is_named_with_its_word_size_even_behind_a_launcher(tmp_path):
    # The PyPI wheel installs `micropython` as a Python launcher script, not the ELF file: the
    # word size is then asked of the interpreter itself.
    launcher = tmp_path / "micropython"
    launcher.write_text(f"#!/bin/sh\nexec {shutil.which('micropython')} \"$@\"\n")
    launcher.chmod(0o755)
    assert port.describe(str(launcher)) == f"{launcher} (64-bit)"
    assert port.describe(str(tmp_path / "missing")).endswith("(word size unknown)")
