"""`luxnode sim` options: bad input is one clear line, good input writes the node's root."""

import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from luxnode.cli import main
from luxnode.sim.fsroot import node_config, write_root
from tests.sim.harness import SimCommand, process_gone
from tests.support.net import free_port


@pytest.mark.parametrize("args, message", [
    ([], "give --broker HOST:PORT and --device-id ID"),
    (["--broker", "localhost", "--device-id", "n"], "expected HOST:PORT"),
    (["--broker", "h:70000", "--device-id", "n"], "expected HOST:PORT"),
    (["--broker", "h:1883", "--device-id", "a/b"], "--device-id 'a/b'"),
    (["--broker", "h:1883", "--device-id", "n", "--psk-key", "xyz"], "--psk-key: expected an even number of hex"),
    (["--broker", "h:1883", "--device-id", "n", "--psk-identity", "n"], "--psk-identity needs --psk-key"),
    (["--broker", "h:1883", "--device-id", "n", "--username", "u"], "--username and --password together"),
    (["--broker", "h:1883", "--device-id", "n", "--ambient", "120"], "--ambient 120"),
    (["--broker", "h:1883", "--device-id", "n", "--count", "0"], "--count 0"),
    (["--broker", "h:1883", "--device-id", "n", "--board", "pdp11"], "unknown board 'pdp11'"),
    (["--fs", "/nonexistent", "--count", "2"], "--fs boots one node"),
    (["--fs", "/nonexistent"], "config.json not found"),
])
def test_bad_options_are_one_line_errors(args, message, capsys, tmp_path):
    assert main(["sim", "--dir", str(tmp_path), *args]) != 0
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_written_root_holds_config_0600_and_the_board_file(tmp_path):
    config = node_config("node-7", "10.0.0.2", 8883, username="node-7", password="pw",
                         psk_key="00ff", keepalive=4)
    root = write_root(tmp_path / "node-7", config)
    assert stat.S_IMODE((root / "config.json").stat().st_mode) == 0o600
    written = json.loads((root / "config.json").read_text())
    assert written["mqtt"]["tls"] == {"mode": "psk", "identity": "node-7", "key": "00ff"}
    assert written["mqtt"]["keepalive"] == 4 and written["mqtt"]["clean_session"] is False
    assert json.loads((root / "board.json").read_text())["name"] == "sim"
    (root / "state.json").write_text("{}")
    write_root(root, config)
    assert (root / "state.json").exists()  # what the node wrote itself is kept


def test_help_names_the_ambient_topic():
    out = subprocess.run([sys.executable, "-m", "luxnode", "sim", "--help"], capture_output=True, text=True).stdout
    assert "{prefix}/{id}/sim/ambient" in out and "--count N" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_every_node(sig):
    cmd = SimCommand("--broker", f"127.0.0.1:{free_port()}", "--device-id", "n", "--count", "2")
    try:
        pids = [cmd.node_pid("n-1"), cmd.node_pid("n-2")]
        cmd.wait_line("[n-2] luxnode: mqtt error")  # running: it retries the absent broker
        os.kill(cmd.proc.pid, sig)
        assert cmd.proc.wait(10) == 130
        assert all(process_gone(pid) for pid in pids)
        cmd.stop()  # joins the reader: the lines printed last, a traceback among them, are in
        assert "Traceback" not in cmd.output()
    finally:
        cmd.stop()
