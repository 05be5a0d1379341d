"""`luxnode export mosquitto DIR` then `mosquitto -c DIR/mosquitto.conf`, as root and as a normal user.

Started as root, mosquitto switches to the config's `user` before it reads the
password file; the export names a user who owns the files. Real mosquitto and its
clients; needs root (to be both users), else skipped.
"""

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from luxnode.device import export as export_module
from luxnode.device import registry as reg
from luxnode.lab import brokerconf
from tests.device.helpers import run_cli
from tests.support.net import free_port, port_open, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching between root and another user needs root")


@pytest.fixture
def world(monkeypatch):
    """A folder other users can reach (pytest's are 0700 under root's), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="luxnode-export-", dir="/tmp"))
    folder.chmod(0o755)
    monkeypatch.setenv("LUXNODE_HOME", str(folder / "home"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def provision(world, capsys) -> dict:
    node = world / "a1"
    node.mkdir()
    code, _, err = run_cli(capsys, "provision", "--fs", node, "--board", "sim", "--device-id", "a1",
                           "--wifi-ssid", "lab", "--broker", "127.0.0.1")
    assert code == 0, err
    registry = reg.load()
    registry["broker"].update(psk_port=free_port(), password_port=free_port(), ws_port=free_port())
    reg.save(registry)
    return registry


def listening(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc: no iproute2 needed)."""
    import ipaddress
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, _, state = line.split()[1:4]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # host-order words
                found.add(str(ipaddress.ip_address(raw)))
    return found


def mosquitto_version() -> tuple[int, ...]:
    out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    return tuple(int(part) for part in out.split("version ", 1)[1].split()[0].split("."))


class Running:
    def __init__(self, argv: list, ports: dict, log: Path):
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.proc.poll() is not None or all(port_open(p) for p in ports.values()), 15,
                     what="mosquitto's three listeners")
        except TimeoutError:
            self.stop()
            raise
        assert self.proc.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def mosquitto_cli(tool: str, port: int, *args, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run([tool, "-h", "127.0.0.1", "-p", str(port), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def ports_of(registry) -> dict:
    broker = registry["broker"]
    return {name: broker[f"{name}_port"] for name in ("psk", "password", "ws")}


def test_exported_as_root_runs_under_mosquitto_started_as_root(world, capsys):
    registry = provision(world, capsys)
    out_dir = world / "export"
    code, out, err = run_cli(capsys, "export", "mosquitto", out_dir)
    assert code == 0, err
    assert "note:" not in out  # the mosquitto account can reach the folder
    conf = (out_dir / "mosquitto.conf").read_text()
    assert "\nuser mosquitto\n" in conf and "user root" not in conf
    account = pwd.getpwnam("mosquitto")
    for name in ("passwd", "psk", "acl"):
        info = (out_dir / name).stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (account.pw_uid, 0o600)
    ports = ports_of(registry)
    broker = Running(["mosquitto", "-v", "-c", out_dir / "mosquitto.conf"], ports, world / "mosquitto.log")
    try:
        assert "Unable to open" not in broker.text()
        assert f"listener {ports['ws']} 127.0.0.1\nprotocol websockets" in conf  # as the lab
        if mosquitto_version() > (2, 0, 11):  # 2.0.11 listens on every interface whatever the address
            assert listening(ports["ws"]) == {"127.0.0.1"}
        psk = ["--psk", registry["devices"]["a1"]["psk_key"], "--psk-identity", "a1"]
        sent = mosquitto_cli("mosquitto_pub", ports["psk"], *psk, "-i", "someone-else", "-t", "luxnode/a1/status",
                             "-m", "online", "-q", "1")
        assert sent.returncode == 0, sent.stderr
        # use_username_as_clientid: the node's client id is its identity, whatever it asked for.
        wait_for(lambda: " as a1 (" in broker.text(), 5, what="a1 connected under its own client id")
        assert "as someone-else" not in broker.text()
        # message_size_limit: an operator's oversize message is not passed on.
        operator = ["-u", "operator", "-P", registry["operator"]["password"]]
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(ports["password"]), *operator,
                                "-t", "luxnode/a1/set", "-C", "1", "-W", "10"], stdout=subprocess.PIPE, text=True)
        wait_for(lambda: "Sending SUBACK" in broker.text(), 5, what="the operator's subscription")
        big = "x" * (brokerconf.MESSAGE_SIZE_LIMIT + 1)
        for payload in (big, "small"):
            assert mosquitto_cli("mosquitto_pub", ports["password"], *operator, "-t", "luxnode/a1/set",
                                 "-m", payload, "-q", "1").returncode == 0
        assert sub.communicate(timeout=15)[0] == "small\n"
    finally:
        broker.stop()


def test_exported_by_a_normal_user_runs_as_that_user_and_as_root(world, capsys, monkeypatch):
    registry = provision(world, capsys)
    nobody = pwd.getpwnam("nobody")
    out_dir = world / "export"
    monkeypatch.setattr(export_module.os, "geteuid", lambda: nobody.pw_uid)
    code, out, err = run_cli(capsys, "export", "mosquitto", out_dir)
    monkeypatch.undo()
    assert code == 0, err
    assert "\nuser nobody\n" in (out_dir / "mosquitto.conf").read_text()
    for path in [out_dir, *out_dir.iterdir()]:  # as that user's own export would have left them
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    ports = ports_of(registry)
    as_user = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    psk = ["--psk", registry["devices"]["a1"]["psk_key"], "--psk-identity", "a1"]
    for run_by in (as_user, []):  # started as that user, then as root (switching to it)
        broker = Running([*run_by, "mosquitto", "-c", out_dir / "mosquitto.conf"], ports,
                         world / f"mosquitto{len(run_by)}.log")
        try:
            sent = mosquitto_cli("mosquitto_pub", ports["psk"], *psk, "-t", "luxnode/a1/status", "-m", "on")
            assert sent.returncode == 0, sent.stderr + broker.text()
        finally:
            broker.stop()
        assert "Unable to open" not in broker.text()


def test_a_folder_the_mosquitto_account_cannot_enter_gets_a_note(world, capsys):
    provision(world, capsys)
    private = world / "private"
    private.mkdir(mode=0o700)
    code, out, err = run_cli(capsys, "export", "mosquitto", private / "export")
    assert code == 0, err
    assert f"note: mosquitto started as root runs as mosquitto, who cannot enter {private} (mode 700)" in out
