"""luxnode export mosquitto (loaded by real mosquitto) and luxnode devices (the broker's view)."""

import stat
import subprocess
from datetime import datetime, timedelta, timezone

from luxnode.device import registry as reg

from tests.device.helpers import run_cli
from tests.support.net import free_port


def provision_folders(tmp_path, capsys, *device_ids):
    for device_id in device_ids:
        node = tmp_path / device_id
        node.mkdir()
        code, _, err = run_cli(capsys, "provision", "--fs", node, "--board", "sim", "--device-id", device_id,
                               "--wifi-ssid", "lab", "--broker", "127.0.0.1")
        assert code == 0, err


def use_free_ports():
    registry = reg.load()
    registry["broker"].update(psk_port=free_port(), password_port=free_port(), ws_port=free_port())
    reg.save(registry)
    return registry


def pub(port, *auth, topic, payload, retain=False):
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), *auth, "-t", topic,
                           "-m", payload, "-q", "1", *(["-r"] if retain else [])],
                          capture_output=True, text=True, timeout=15)


def test_exported_folder_runs_a_real_mosquitto_and_devices_shows_its_view(tmp_path, lab_home, mosquitto, capsys):
    provision_folders(tmp_path, capsys, "a1", "b2")
    registry = use_free_ports()
    broker_ports = registry["broker"]
    out_dir = tmp_path / "export"

    code, out, err = run_cli(capsys, "export", "mosquitto", out_dir)
    assert code == 0, err
    for name in ("passwd", "psk", "acl"):
        assert stat.S_IMODE((out_dir / name).stat().st_mode) == 0o600
        assert (out_dir / name).read_bytes() == (lab_home / name).read_bytes()
    conf = (out_dir / "mosquitto.conf").read_text()
    assert f"listener {broker_ports['psk_port']}\npsk_hint luxnode\nuse_identity_as_username true" in conf
    assert registry["devices"]["a1"]["psk_key"] not in conf

    # The exported configuration, as is, but as root (the helper's `user root`): pytest's folders are 0700.
    mosquitto(conf.replace("\nuser mosquitto\n", "\n"))
    a1 = registry["devices"]["a1"]
    psk = ["--psk", a1["psk_key"], "--psk-identity", "a1"]
    assert pub(broker_ports["psk_port"], *psk, topic="luxnode/a1/status", payload="online", retain=True).returncode == 0
    wrong = ["--psk", registry["devices"]["b2"]["psk_key"], "--psk-identity", "a1"]
    assert pub(broker_ports["psk_port"], *wrong, topic="luxnode/a1/x", payload="1").returncode != 0
    operator = ["-u", "operator", "-P", registry["operator"]["password"]]
    assert pub(broker_ports["password_port"], *operator, topic="luxnode/a1/set",
               payload='{"control":"ON"}').returncode == 0
    assert pub(broker_ports["password_port"], "-u", "operator", "-P", "wrong",
               topic="luxnode/a1/set", payload="{}").returncode != 0

    code, out, err = run_cli(capsys, "devices")
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert rows["a1"][1:4] == ["sim", "psk", "0.1.0"] and rows["a1"][-2:] == ["online", "now"]
    assert rows["b2"][-2:] == ["never", "-"]

    # Seen online a moment ago: once the node is offline, that time is what devices shows.
    seen = datetime.fromisoformat(reg.load()["devices"]["a1"]["last_seen"])
    assert abs(seen - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert pub(broker_ports["psk_port"], *psk, topic="luxnode/a1/status", payload="offline", retain=True).returncode == 0
    code, out, err = run_cli(capsys, "devices")
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert rows["a1"][-3:] == ["offline", *seen.strftime("%Y-%m-%d %H:%MZ").split()]


def test_devices_without_a_broker_still_lists_the_registry(tmp_path, lab_home, capsys):
    code, out, _ = run_cli(capsys, "devices")
    assert code == 0 and "no devices provisioned yet" in out
    provision_folders(tmp_path, capsys, "a1")
    use_free_ports()  # nothing listens there
    code, out, err = run_cli(capsys, "devices", "--timeout", "2")
    assert code == 0 and "a1" in out
    assert err.startswith("status unknown: cannot reach the broker at 127.0.0.1:"), err
    assert out.splitlines()[1].split()[-2:] == ["?", "-"]
    code, out, err = run_cli(capsys, "devices", "--offline")
    assert code == 0 and "a1" in out and not err


def test_export_before_any_provisioning_says_what_to_do(tmp_path, lab_home, capsys):
    code, _, err = run_cli(capsys, "export", "mosquitto", tmp_path / "out")
    assert code == 2 and "provision a device first" in err


def test_export_into_a_file_is_one_line(tmp_path, lab_home, capsys):
    from tests.device.helpers import one_line_error

    provision_folders(tmp_path, capsys, "a1")
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder\n")
    code, _, err = run_cli(capsys, "export", "mosquitto", taken)
    one_line_error(code, err, f"cannot write into {taken}")
