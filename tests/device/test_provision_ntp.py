"""luxnode provision writes ntp_server for nodes in certificate mode: the lab's time server
(recorded in the registry by 'luxnode lab') at the --broker host, or --ntp-server."""

import json

import pytest

from tests.device.helpers import one_line_error, run_cli


def provision_cert(capsys, node, tmp_path, *extra):
    from tests.firmware.certs import make_ca_and_server

    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    ca = make_ca_and_server(certs)[0]
    return run_cli(capsys, "provision", "--fs", node, "--board", "esp32", "--device-id", "node-1",
                   "--wifi-ssid", "lab", "--broker", "192.0.2.10", "--tls", "cert", "--ca", ca, *extra)


def test_provision_gives_a_cert_node_the_labs_time_server(tmp_path, lab_home, capsys):
    node = tmp_path / "node"
    node.mkdir()
    code, _, err = provision_cert(capsys, node, tmp_path)
    assert code == 0, err
    assert "ntp_server" not in json.loads((node / "config.json").read_text())  # no lab yet: the firmware's default
    registry_file = lab_home / "registry.json"
    registry = json.loads(registry_file.read_text())
    registry["broker"]["ntp_port"] = 1123  # as 'luxnode lab' records it
    registry_file.write_text(json.dumps(registry))
    code, out, err = provision_cert(capsys, node, tmp_path)
    assert code == 0, err
    assert json.loads((node / "config.json").read_text())["ntp_server"] == "192.0.2.10:1123"
    assert "ntp server     192.0.2.10:1123" in out
    code, _, err = provision_cert(capsys, node, tmp_path, "--ntp-server", "time.example.net")
    assert code == 0, err
    assert json.loads((node / "config.json").read_text())["ntp_server"] == "time.example.net"
    code, _, err = run_cli(capsys, "provision", "--fs", node, "--board", "esp32", "--device-id", "node-1",
                           "--wifi-ssid", "lab", "--broker", "192.0.2.10")
    assert code == 0, err
    assert "ntp_server" not in json.loads((node / "config.json").read_text())  # PSK needs no clock


@pytest.mark.parametrize("given, message", [
    ("time.example.net:0", "the port must be a number 1-65535"),
    ("time.example.net:x", "the port must be a number 1-65535"),
    ("time.example.net:70000", "the port must be a number 1-65535"),
    ("::1", "an IPv4 address or a host name"),
    ("bad host", "an IPv4 address or a host name"),
    (":123", "an IPv4 address or a host name"),
])
def test_a_bad_ntp_server_is_one_line(tmp_path, lab_home, capsys, given, message):
    node = tmp_path / "node"
    node.mkdir()
    code, _, err = provision_cert(capsys, node, tmp_path, "--ntp-server", given)
    one_line_error(code, err, f"--ntp-server {given!r}", message)
    assert not (node / "config.json").exists()
