"""luxnode lab --bind: every listener of the lab on one address, remembered, refused in one line where
this machine has no such address, and a board provisioned against loopback told so. Tests listen on
loopback, or on a LAN address inside a network namespace of their own."""

import ipaddress
import itertools
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from luxnode.lab import brokerconf
from luxnode.lab.bind import LabAddress, board_reach_warning, is_local_address
from luxnode.lab.brokerconf import LabPorts
from tests.lab.labrun import LabCommand, processes_under
from tests.support.net import wait_for

# Documentation ranges (RFC 5737): the first that is no address of this machine. Binding a socket
# to it fails at once; nothing is sent.
NOT_HERE = next(a for a in ("192.0.2.1", "198.51.100.1", "203.0.113.1") if not is_local_address(a))


def _address(hex_address: str) -> str:
    """/proc/net's address: 32-bit words in the host's (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_sockets(pids) -> set[tuple[str, str, int]]:
    """(protocol, address, port) of each listening TCP socket and unconnected UDP socket the processes hold,
    as their network namespace sees them."""
    inodes, tables = set(), set()
    for pid in pids:
        tables.add(Path(f"/proc/{pid}/net"))
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    found = set()
    for table, (protocol, listening) in itertools.product(
            tables, (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07"))):
        try:
            lines = (table / protocol).read_text().splitlines()[1:]
        except OSError:
            continue  # the process has ended
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode in inodes and state == listening:
                address, port = local.split(":")
                found.add((protocol.rstrip("6"), _address(address), int(port, 16)))
    return found


def lab_sockets(lab: LabCommand) -> set[tuple[str, str, int]]:
    """The lab's own process, its broker and its nodes."""
    return listening_sockets([lab.proc.pid, *processes_under(lab.home)])


def expected(lab: LabCommand, address: str, web: str | None = None) -> set[tuple[str, str, int]]:
    ports, web = lab.ports, web or address
    return {("tcp", address, ports["psk_port"]), ("tcp", address, ports["port"]), ("tcp", web, ports["ws_port"]),
            ("tcp", web, ports["http_port"]), ("udp", address, ports["ntp_port"])}


def luxnode(*argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "luxnode", *argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_lab_on_loopback_listens_there_alone_its_node_connects_and_a_restart_keeps_it(tmp_path):
    home = tmp_path / "home"
    with LabCommand(home, nodes=1, options=("--bind", "127.0.0.1")) as lab:
        lab.wait_line("1/1 nodes online")   # sim-1 over TLS-PSK at 127.0.0.1
        assert lab_sockets(lab) == expected(lab, "127.0.0.1"), lab.output()
        banner = lab.output()
        assert f"port {lab.ports['psk_port']} TLS-PSK (nodes), port {lab.ports['port']} username/password; " \
               "127.0.0.1 only" in banner
        assert f"SNTP on UDP port {lab.ports['ntp_port']}, 127.0.0.1 only" in banner
        assert "a board      cannot reach this lab on 127.0.0.1: start it with --bind all" in banner
        assert lab.registry()["broker"]["bind"] == "127.0.0.1"
        second = subprocess.run([sys.executable, "-m", "luxnode", "lab", "--no-browser", "--nodes", "0"], env=lab.env,
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert second.returncode == 2 and "listening on 127.0.0.1)" in second.stderr, second.stderr
        assert lab.interrupt() == 0

    # Restarted without --bind: the lab listens where it listened before, and says so.
    with LabCommand(home, nodes=0) as again:
        again.wait_line("nodes online")
        assert lab_sockets(again) == expected(again, "127.0.0.1"), again.output()
        assert "username/password; 127.0.0.1 only" in again.output()
        assert again.interrupt() == 0


def test_a_lab_on_another_loopback_address_serves_its_node_and_its_dashboard_there(tmp_path):
    with LabCommand(tmp_path / "home", nodes=1, options=("--bind", "127.0.0.2")) as lab:
        lab.wait_line("1/1 nodes online")
        assert lab_sockets(lab) == expected(lab, "127.0.0.2"), lab.output()
        url = lab.url
        assert url.startswith(f"http://127.0.0.2:{lab.ports['http_port']}/?token=")
        # Operator tools find it through the registry (its broker host), and the node's ambient bridge too.
        assert lab.registry()["broker"]["host"] == "127.0.0.2"
        watch = subprocess.run([sys.executable, "-m", "luxnode", "watch", "--once"], env=lab.env,
                               capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert watch.returncode == 0 and "sim-1" in watch.stdout, watch.stderr
        with urllib.request.urlopen(url.split("?")[0], timeout=10) as page:   # Host: 127.0.0.2 is loopback
            assert page.status == 200
        assert lab.interrupt() == 0


# A LAN address (RFC 2544's test range) on a veth pair in a network namespace of the test's own,
# where the lab, its broker and its node run: nothing leaves the namespace.
LAN = "198.18.0.1"
NAMESPACE = ("unshare", "--net", "sh", "-ec", "ip link set lo up; ip link add lab0 type veth peer name lab1; "
             f"ip address add {LAN}/24 dev lab0; ip link set lab0 up; ip link set lab1 up; exec \"$@\"", "sh")


def _namespaces_work() -> bool:
    if not all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip")):
        return False
    return subprocess.run([*NAMESPACE, "true"], capture_output=True, timeout=30).returncode == 0


def test_a_lab_on_a_lan_address_serves_boards_there_and_keeps_its_dashboard_on_loopback(tmp_path):
    if not _namespaces_work():
        pytest.skip("needs unshare, nsenter and ip (iproute2) with the right to make a network namespace (root)")
    with LabCommand(tmp_path / "home", nodes=1, options=("--bind", LAN), runner=NAMESPACE) as lab:
        lab.wait_line("1/1 nodes online")
        assert lab_sockets(lab) == expected(lab, LAN, web="127.0.0.1"), lab.output()
        banner = lab.output()
        assert f"username/password; {LAN} only" in banner and f"--wifi-ssid SSID --broker {LAN}" in banner
        assert f"Home Assistant  MQTT integration: {LAN}, port {lab.ports['port']}" in banner
        assert lab.url.startswith(f"http://127.0.0.1:{lab.ports['http_port']}/?token=")
        assert lab.registry()["broker"]["host"] == LAN
        # The node's ambient bridge logs in as the operator at the lab's address, not with the node's key.
        log = lab.home / "broker.log"
        wait_for(lambda: "as luxnode-sim-1-sim (" in log.read_text(), 30, what="the ambient bridge in broker.log")
        bridge = next(line for line in log.read_text().splitlines() if "as luxnode-sim-1-sim (" in line)
        assert f"from {LAN}:" in bridge and "u'operator'" in bridge, bridge
        watch = subprocess.run(["nsenter", f"--net=/proc/{lab.proc.pid}/ns/net", sys.executable, "-m", "luxnode",
                                "watch", "--once"], env=lab.env, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        assert watch.returncode == 0 and "sim-1" in watch.stdout, watch.stderr
        assert lab.interrupt() == 0


def test_an_address_this_machine_lacks_is_refused_in_one_line(isolated_luxnode_home):
    result = luxnode("lab", "--no-browser", "--nodes", "0", "--bind", NOT_HERE)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot listen on {NOT_HERE}: no such address on this machine" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (isolated_luxnode_home / "registry.json").exists()   # nothing provisioned, nothing remembered


def test_a_remembered_address_that_is_gone_names_where_it_came_from(isolated_luxnode_home):
    (isolated_luxnode_home / "registry.json").write_text(json.dumps({"broker": {"bind": NOT_HERE}}))
    result = luxnode("lab", "--no-browser", "--nodes", "0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot listen on {NOT_HERE}: no such address on this machine (remembered from an earlier " \
           f"'luxnode lab --bind {NOT_HERE}'; give --bind all or another address)" in result.stderr


@pytest.mark.parametrize("text, reason", [
    ("::1", "the nodes speak IPv4 only"),
    ("lab.example", "give an IPv4 address of this machine"),
    ("127.0.0.256", "give an IPv4 address of this machine"),
])
def test_what_is_no_ipv4_address_is_refused_in_one_line(text, reason):
    result = luxnode("lab", "--no-browser", "--nodes", "0", "--bind", text)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"--bind {text}" in result.stderr.replace("'", "") and reason in result.stderr


def test_the_address_and_its_settings():
    assert LabAddress.parse("all").setting == "all" and LabAddress.parse("ALL").is_all
    assert LabAddress.parse("localhost").address == "127.0.0.1"
    lan = LabAddress.parse("192.168.1.5")
    # Boards and tools reach it there; the dashboard and its WebSocket stay on this machine.
    assert (lan.connect_host, lan.web_host, lan.describe()) == ("192.168.1.5", "127.0.0.1", "192.168.1.5 only")
    every = LabAddress.parse("0.0.0.0")
    assert (every.connect_host, every.web_host, every.describe()) == ("127.0.0.1", "127.0.0.1", "all IPv4 interfaces")
    loop = LabAddress.parse("127.0.0.2")
    assert (loop.connect_host, loop.web_host, loop.is_loopback) == ("127.0.0.2", "127.0.0.2", True)


def test_broker_conf_puts_the_node_and_password_listeners_on_the_address(tmp_path):
    ports = LabPorts(psk=18883, password=11883, ws=19001)
    lines = lambda bind: [l for l in brokerconf.render(tmp_path, ports, bind).splitlines()  # noqa: E731
                          if l.startswith("listener")]
    assert lines(LabAddress(None)) == ["listener 18883", "listener 11883", "listener 19001 127.0.0.1"]
    assert lines(LabAddress("192.168.1.5")) == ["listener 18883 192.168.1.5", "listener 11883 192.168.1.5",
                                                "listener 19001 127.0.0.1"]
    assert lines(LabAddress("127.0.0.2")) == ["listener 18883 127.0.0.2", "listener 11883 127.0.0.2",
                                              "listener 19001 127.0.0.2"]


def _this_machines_lan_address() -> str | None:
    """An IPv4 address of this machine off loopback, read from the kernel's table (nothing is sent)."""
    lines = Path("/proc/net/fib_trie").read_text().splitlines()
    for previous, line in zip(lines, lines[1:]):
        if "/32 host LOCAL" in line:
            address = previous.split()[-1]
            if not ipaddress.ip_address(address).is_loopback:
                return address
    return None


def test_a_board_is_told_when_its_broker_address_cannot_reach_the_lab():
    assert "--broker 127.0.0.1 is a loopback address" in board_reach_warning("127.0.0.1", {})
    assert "--broker localhost is a loopback address" in board_reach_warning("localhost", {"bind": "all"})
    assert board_reach_warning("broker.example", {"bind": "127.0.0.1"}) is None   # another machine
    assert board_reach_warning(NOT_HERE, {"bind": "127.0.0.1"}) is None
    lan = _this_machines_lan_address()
    if lan is None:
        pytest.skip("this machine has no IPv4 address off loopback")
    assert board_reach_warning(lan, {"bind": "all"}) is None
    assert board_reach_warning(lan, {"bind": lan}) is None
    assert board_reach_warning(lan, {"bind": "127.0.0.1"}) == (
        f"the lab listens on 127.0.0.1 only (luxnode lab --bind 127.0.0.1): a board cannot reach it at {lan}; "
        f"restart the lab with --bind {lan} or --bind all")


def test_provisioning_a_board_against_loopback_warns_and_a_node_folder_does_not(tmp_path):
    from tests.device.pty_board import PtyBoard

    board = PtyBoard(tmp_path / "board").start()
    try:
        given = ("--device-id", "b1", "--wifi-ssid", "lab", "--broker", "127.0.0.1", "--no-reset")
        result = luxnode("provision", "--port", board.port, *given)
    finally:
        board.stop()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("warning: --broker 127.0.0.1 is a loopback address: a board reaches no broker there "
                             "(it is the board itself); give this machine's LAN address, with a lab started with "
                             "--bind all or that address\n")
    (tmp_path / "folder").mkdir()
    result = luxnode("provision", "--fs", tmp_path / "folder", *given[:-1], "--board", "sim")
    assert result.returncode == 0 and result.stderr == "", result.stderr
