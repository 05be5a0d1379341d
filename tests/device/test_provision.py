"""luxnode provision: credentials on the board (unix port on a pty), registry and broker auth files."""

import json
import stat

from luxnode.mosquitto import acl as acl_file, passwd, pskfile

from tests.device.helpers import one_line_error, run_cli, tiny_firmware


def provision(capsys, *target, device_id="node-1", extra=()):
    return run_cli(capsys, "provision", *target, "--device-id", device_id, "--wifi-ssid", "lab",
                   "--wifi-password", "wifi-secret", "--broker", "192.0.2.10", *extra)


def test_provision_writes_config_registry_and_auth_files(tmp_path, pty_board, lab_home, capsys):
    board = pty_board()
    run_cli(capsys, "deploy", "--port", board.port, "--source", tiny_firmware(tmp_path / "fw"), "--no-reset")
    code, out, err = provision(capsys, "--port", board.port)
    assert code == 0, err
    board.wait_exit()  # soft reset after writing the config

    config = json.loads((board.root / "config.json").read_text())
    registry = json.loads((lab_home / "registry.json").read_text())
    entry = registry["devices"]["node-1"]
    assert entry["board"] == "sim" and entry["tls"] == "psk" and entry["firmware"]
    assert config["device_id"] == "node-1" and config["board"] == "sim"
    assert config["wifi"] == {"ssid": "lab", "password": "wifi-secret"}
    mqtt = config["mqtt"]
    assert (mqtt["host"], mqtt["port"], mqtt["client_id"]) == ("192.0.2.10", 8883, "luxnode-node-1")
    assert mqtt["tls"] == {"mode": "psk", "identity": "node-1", "key": entry["psk_key"]}
    assert len(bytes.fromhex(entry["psk_key"])) == 32
    assert mqtt["username"] == entry["username"] == "node-1" and mqtt["password"] == entry["password"]

    for name in ("registry.json", "passwd", "psk", "acl"):
        assert stat.S_IMODE((lab_home / name).stat().st_mode) == 0o600, name
    assert pskfile.read_file(lab_home / "psk") == {"node-1": bytes.fromhex(entry["psk_key"])}
    users = passwd.read_file(lab_home / "passwd")
    assert passwd.verify(entry["password"], users["node-1"])
    assert passwd.verify(registry["operator"]["password"], users["operator"])
    acl_file.read_file(lab_home / "acl")  # parses as mosquitto syntax

    # Secrets stay off the terminal unless asked for.
    assert entry["psk_key"] not in out and entry["password"] not in out and "wifi-secret" not in out
    assert "hidden; --show-secrets" in out


def test_reprovisioning_rotates_credentials_and_keeps_calibration(tmp_path, lab_home, capsys):
    node = tmp_path / "node"
    node.mkdir()
    code, _, err = provision(capsys, "--fs", node, "--board", "sim")
    assert code == 0, err
    first = json.loads((lab_home / "registry.json").read_text())["devices"]["node-1"]
    config = json.loads((node / "config.json").read_text())
    config["sensor"]["dark_raw"] = 321  # calibrated on the bench
    (node / "config.json").write_text(json.dumps(config))
    (lab_home / "passwd").write_text((lab_home / "passwd").read_text() + passwd.render(
        {"alice": passwd.hash_password("alice-pw")}))  # a user added by hand stays

    code, out, err = provision(capsys, "--fs", node, "--board", "sim", extra=["--show-secrets"])
    assert code == 0, err
    second = json.loads((lab_home / "registry.json").read_text())["devices"]["node-1"]
    assert second["psk_key"] != first["psk_key"] and second["password"] != first["password"]
    assert second["psk_key"] in out and second["password"] in out  # --show-secrets
    assert pskfile.read_file(lab_home / "psk") == {"node-1": bytes.fromhex(second["psk_key"])}
    users = passwd.read_file(lab_home / "passwd")
    assert not passwd.verify(first["password"], users["node-1"])
    assert passwd.verify("alice-pw", users["alice"])
    config = json.loads((node / "config.json").read_text())
    assert config["sensor"]["dark_raw"] == 321 and config["mqtt"]["tls"]["key"] == second["psk_key"]
    assert stat.S_IMODE((node / "config.json").stat().st_mode) == 0o600


def test_two_devices_and_plain_mqtt(tmp_path, lab_home, capsys):
    for device_id, tls in (("a1", "psk"), ("b2", "none")):
        node = tmp_path / device_id
        node.mkdir()
        code, _, err = provision(capsys, "--fs", node, "--board", "sim", device_id=device_id, extra=["--tls", tls])
        assert code == 0, err
    plain = json.loads((tmp_path / "b2" / "config.json").read_text())["mqtt"]
    assert plain["port"] == 1883 and "tls" not in plain
    assert set(pskfile.read_file(lab_home / "psk")) == {"a1"}
    assert {"a1", "b2", "operator"} <= set(passwd.read_file(lab_home / "passwd"))


def test_esp8266_cannot_do_psk(tmp_path, lab_home, capsys):
    node = tmp_path / "node"
    node.mkdir()
    code, _, err = provision(capsys, "--fs", node, "--board", "esp8266")
    one_line_error(code, err, "esp8266 has no TLS-PSK", "--tls")
    code, _, err = provision(capsys, "--fs", node, "--board", "esp8266", extra=["--tls", "psk"])
    one_line_error(code, err, "esp8266 has no TLS-PSK")
    assert not (node / "config.json").exists() and not (lab_home / "psk").exists()


def test_esp8266_cannot_check_a_certificate_either(tmp_path, lab_home, capsys):
    node = tmp_path / "node"
    node.mkdir()
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n...\n")
    code, _, err = provision(capsys, "--fs", node, "--board", "esp8266", extra=["--tls", "cert", "--ca", ca])
    one_line_error(code, err, "esp8266 cannot verify a broker certificate", "--tls none")
    code, _, err = provision(capsys, "--fs", node, "--board", "esp8266")
    one_line_error(code, err, "neither TLS-PSK nor certificate checking", "--tls none")
    assert not (node / "config.json").exists()
    code, _, err = provision(capsys, "--fs", node, "--board", "esp8266", extra=["--tls", "none"])
    assert code == 0, err
    assert "tls" not in json.loads((node / "config.json").read_text())["mqtt"]


def test_cert_mode_copies_the_ca(tmp_path, lab_home, capsys):
    node = tmp_path / "node"
    node.mkdir()
    code, _, err = provision(capsys, "--fs", node, "--board", "esp32", extra=["--tls", "cert"])
    one_line_error(code, err, "--tls cert needs --ca FILE")
    from tests.firmware.certs import make_ca_and_server

    (tmp_path / "certs").mkdir()
    ca = make_ca_and_server(tmp_path / "certs")[0]   # provisioning refuses a CA file that is not PEM
    code, _, err = provision(capsys, "--fs", node, "--board", "esp32", extra=["--tls", "cert", "--ca", ca])
    assert code == 0, err
    assert (node / "ca.pem").read_text() == ca.read_text()
    assert json.loads((node / "config.json").read_text())["mqtt"]["tls"] == {"mode": "cert", "ca": "ca.pem"}


def test_bad_input_is_refused_in_one_line(tmp_path, lab_home, capsys):
    node = tmp_path / "node"
    node.mkdir()
    code, _, err = provision(capsys, "--fs", node, "--board", "sim", device_id="a/b")
    one_line_error(code, err, "invalid device id")
    code, _, err = run_cli(capsys, "provision", "--fs", node, "--board", "sim", "--device-id", "x",
                           "--wifi-ssid", "s", "--broker", "host:port")
    one_line_error(code, err, "--broker 'host:port'")
    code, _, err = provision(capsys, "--fs", node)
    one_line_error(code, err, "no board.json", "--board")
    (node / "config.json").mkdir()
    code, _, err = provision(capsys, "--fs", node, "--board", "sim")
    one_line_error(code, err, f"cannot read {node / 'config.json'}: Is a directory")
    (node / "config.json").rmdir()
    (lab_home / "registry.json").write_text("{not json")
    code, _, err = provision(capsys, "--fs", node, "--board", "sim")
    one_line_error(code, err, "registry.json: not valid JSON")


def test_a_stale_pid_file_never_signals_another_program(lab_home):
    import subprocess

    from luxnode.device import authfiles

    lab_home.mkdir()
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (lab_home / "broker.pid").write_text(f"{bystander.pid}\n")
        assert "no broker runs as pid" in authfiles.reload_broker()
        assert bystander.poll() is None  # SIGHUP would have ended it
    finally:
        bystander.kill()
        bystander.wait()
    (lab_home / "broker.pid").unlink()
    assert "no lab broker running" in authfiles.reload_broker()


def test_overlapping_provisioning_runs_lose_no_device(tmp_path, lab_home):
    import threading
    from types import SimpleNamespace

    from luxnode.device import provision as prov

    def one(device_id):
        node = tmp_path / device_id
        node.mkdir()
        args = SimpleNamespace(device_id=device_id, board="sim", tls="psk", ca=None, broker="127.0.0.1",
                               wifi_ssid="lab", wifi_password="", port=None, force=False)
        prov.provision(args, prov.FolderTarget(node))

    threads = [threading.Thread(target=one, args=(f"n{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    registry = json.loads((lab_home / "registry.json").read_text())
    assert sorted(registry["devices"]) == [f"n{i}" for i in range(8)]
    keys = pskfile.read_file(lab_home / "psk")
    assert {k: v.hex() for k, v in keys.items()} == {d: e["psk_key"] for d, e in registry["devices"].items()}
