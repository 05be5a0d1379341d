import json
import subprocess
import sys

import pytest

from luxnode import boards
from luxnode.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "luxnode" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "luxnode", "--help"], capture_output=True, text=True, check=True)
    assert "usage: luxnode" in out.stdout


def test_board_files_carry_what_the_contract_lists():
    offsets = {"esp32": "0x1000", "esp32s3": "0x0", "esp32c3": "0x0", "esp8266": "0x0"}
    assert set(offsets) | {"sim"} <= set(boards.names())
    for name, offset in offsets.items():
        board = boards.load(name)
        assert board["flash_offset"] == offset
        assert {"pin", "bits", "atten_db"} <= set(board["adc"])
        assert {"pin", "freq_min", "freq_max"} <= set(board["pwm"])
    assert boards.load("esp8266")["capabilities"] == {
        "tls_psk": False, "tls_cert": False, "pwm_invert": False, "rtc_memory": True}
    assert boards.load("esp32")["capabilities"]["tls_psk"] is True


def luxnode(*argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "luxnode", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def one_line_error(result, *parts):
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


BAD_IDS = ["", "sim+", "#", "a/b", "a b", "tab\there", "nul\x01", "x" * 33, "é"]


@pytest.mark.parametrize("device_id", BAD_IDS)
def test_one_device_id_rule_for_set_watch_sim_and_provision(device_id, tmp_path):
    # Each command refuses before it touches a broker, a board or a folder.
    unreachable = ["--port", "9"]
    commands = [
        ["set", device_id, "50", *unreachable],
        ["watch", "--once", device_id, *unreachable],
        ["sim", "--broker", "127.0.0.1:9", "--device-id", device_id],
        ["provision", "--fs", tmp_path, "--board", "sim", "--device-id", device_id, "--wifi-ssid", "lab",
         "--broker", "127.0.0.1"],
    ]
    for argv in commands:
        one_line_error(luxnode(*argv), "invalid ", "1-32 letters, digits, '-' or '_'")
    assert list(tmp_path.iterdir()) == []


def test_sim_count_keeps_every_id_inside_the_rule():
    one_line_error(luxnode("sim", "--broker", "127.0.0.1:9", "--device-id", "x" * 31, "--count", "2"),
                   "--count 2", "'" + "x" * 31 + "-2'")


@pytest.mark.parametrize("argv, message", [
    (["set", "node-1", "50", "--timeout", "-1"], "--timeout -1: expected a positive number of seconds"),
    (["set", "node-1", "50", "--timeout", "0"], "--timeout 0: expected a positive number of seconds"),
    (["set", "node-1", "50", "--fade-ms", "-5"], "--fade-ms -5"),
    (["devices", "--timeout", "-2"], "--timeout -2"),
    (["provision", "--fs", ".", "--device-id", "n", "--wifi-ssid", "s", "--broker", "h", "--timeout", "-1"],
     "--timeout -1"),
])
def test_negative_waits_are_refused(argv, message):
    one_line_error(luxnode(*argv), message)


def provision_fs(folder, *extra, ssid="lab", broker="127.0.0.1"):
    folder.mkdir(exist_ok=True)
    return luxnode("provision", "--fs", folder, "--board", "sim", "--device-id", folder.name, f"--wifi-ssid={ssid}",
                   f"--broker={broker}", *extra)


@pytest.mark.parametrize("extra, ssid, broker, message", [
    ([], "", "127.0.0.1", "--wifi-ssid '': a WiFi network name is 1-32 bytes (this one has 0)"),
    ([], "s" * 33, "127.0.0.1", "1-32 bytes (this one has 33)"),
    ([], "é" * 17, "127.0.0.1", "1-32 bytes (this one has 34)"),
    (["--wifi-password", "short"], "lab", "127.0.0.1", "8-63 printable ASCII characters (this one has 5)"),
    (["--wifi-password", "p" * 64], "lab", "127.0.0.1", "(this one has 64)"),
    ([], "lab", "bad host!", "--broker 'bad host!': 'bad host!' is neither an IP address nor a host name"),
    ([], "lab", "-lead.example:1883", "is neither an IP address nor a host name"),
])
def test_provision_refuses_what_a_board_cannot_use(tmp_path, extra, ssid, broker, message):
    node = tmp_path / "node-1"
    one_line_error(provision_fs(node, *extra, ssid=ssid, broker=broker), message)
    assert list(node.iterdir()) == []


def test_provision_accepts_what_a_board_can_use(tmp_path):
    for name, ssid, password, broker in [("a", "s" * 32, "p" * 8, "192.0.2.1:1883"), ("b", "x", "p" * 63, "lab.local"),
                                        ("c", "x", None, "[::1]"), ("d", "x", None, "::1")]:
        extra = ["--wifi-password", password] if password else []
        result = provision_fs(tmp_path / name, *extra, ssid=ssid, broker=broker)
        if broker == "[::1]":
            assert result.returncode == 2   # brackets only around an address with a port
            continue
        assert result.returncode == 0, (broker, result.stderr)


def test_provision_refuses_a_ca_file_that_is_not_pem(tmp_path):
    ca = tmp_path / "ca.der"
    ca.write_bytes(b"\x30\x82\x01\x0a not pem")
    node = tmp_path / "node-1"
    one_line_error(provision_fs(node, "--tls", "cert", "--ca", ca), f"--ca {ca}: not a PEM CA certificate")
    assert list(node.iterdir()) == []


def test_provision_fs_writes_a_folder_luxnode_sim_can_boot(tmp_path):
    node = tmp_path / "bench-1"
    assert provision_fs(node, broker="127.0.0.1:9").returncode == 0
    assert sorted(p.name for p in node.iterdir()) == ["board.json", "config.json"]
    assert json.loads((node / "board.json").read_text()) == boards.load("sim")


def test_devices_sorts_naturally(tmp_path):
    for name in ("sim-10", "sim-2", "sim-1"):
        assert provision_fs(tmp_path / name).returncode == 0
    result = luxnode("devices", "--timeout", "0.5")
    rows = [line.split()[0] for line in result.stdout.splitlines() if "sim-" in line]
    assert rows == ["sim-1", "sim-2", "sim-10"], result.stdout
