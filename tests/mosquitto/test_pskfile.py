"""psk_file: identity:hexkey lines, as mosquitto reads them."""

import stat

import pytest

from luxnode.mosquitto import pskfile


def test_round_trip_is_private(tmp_path):
    path = tmp_path / "psk"
    keys = {"node-1": bytes(range(32)), "node-2": b"\xff" * 16}
    pskfile.write_file(path, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"node-1:{bytes(range(32)).hex()}\nnode-2:{'ff' * 16}\n"
    assert pskfile.read_file(path) == keys


def test_mosquittos_own_example_file():
    """Its 'easy:12345' has an odd digit count: mosquitto reads it as the number 0x012345."""
    assert pskfile.read_file("/usr/share/doc/mosquitto/examples/pskfile.example") == {
        "id": bytes.fromhex("deadbeef"), "easy": bytes.fromhex("012345")}


def test_comments_blank_lines_and_upper_case_hex(tmp_path):
    path = tmp_path / "psk"
    path.write_text("# lab nodes\n\nnode-1:DEADBEEF\n")
    assert pskfile.read_file(path) == {"node-1": bytes.fromhex("deadbeef")}


@pytest.mark.parametrize("line, problem", [
    ("node-1", "no ':' on this line"),
    (":00ff", "empty identity"),
    ("node-1:", "identity 'node-1': empty key"),
    ("node-1:0x00ff", "without '0x'"),
    ("node-1:00fg", "non-hexadecimal"),
    ("node-1:" + "00" * 257, "at most 256"),
    ("ok:00ff", "identity 'ok' is listed twice"),
])
def test_malformed_lines_name_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "psk"
    path.write_text(f"ok:00ff\n{line}\n")
    with pytest.raises(pskfile.PskFileError) as err:
        pskfile.read_file(path)
    assert str(err.value).startswith(f"{path}:2: ") and problem in str(err.value)


def test_invalid_entries_are_not_written(tmp_path):
    for keys in ({"a:b": b"\x01"}, {"node": b""}):
        with pytest.raises(ValueError):
            pskfile.write_file(tmp_path / "psk", keys)
    assert not (tmp_path / "psk").exists()


def test_a_psk_file_written_here_works_in_mosquitto(tmp_path, mosquitto):
    import subprocess

    from tests.support.net import free_port

    key = bytes(range(1, 33))
    pskfile.write_file(tmp_path / "psk", {"node-1": key, "node-2": b"\x42" * 16})
    port = free_port()
    mosquitto(f"listener {port} 127.0.0.1\npsk_hint lab\npsk_file {tmp_path / 'psk'}\n"
              "use_identity_as_username true\nallow_anonymous false\n")

    def publish(identity, hexkey):
        return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "--psk", hexkey,
                               "--psk-identity", identity, "-t", "t", "-m", "m"],
                              capture_output=True, text=True, timeout=20).returncode

    assert publish("node-1", key.hex()) == 0
    assert publish("node-2", "42" * 16) == 0
    assert publish("node-1", "42" * 16) != 0
