"""`luxnode passwd`: mosquitto_passwd's flags; the files it writes work in real mosquitto."""

import os
import pty
import select
import stat
import subprocess
import sys
import time

import pytest

from luxnode.cli import main
from luxnode.mosquitto import passwd


def luxnode_passwd(*args) -> int:
    return main(["passwd", *map(str, args)])


def interactive_passwd(*args, answers=()) -> tuple[int, str]:
    """Run `luxnode passwd` on a terminal and type ``answers`` at its prompts."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command itself
        os.execv(sys.executable, [sys.executable, "-m", "luxnode", "passwd", *map(str, args)])
    output = b""
    deadline = time.monotonic() + 20
    pending = list(answers)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            prompts = output.lower().count(b"password: ")
            if pending and prompts > len(answers) - len(pending):  # answer each prompt once
                os.write(fd, pending.pop(0).encode() + b"\n")
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def mosquitto_pub(port, username, password) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", username, "-P", password,
         "-t", "test/topic", "-m", "hello", "-q", "1"],
        capture_output=True, text=True, timeout=20,
    )


def test_every_flag_writes_a_file_mosquitto_accepts(tmp_path, mosquitto, capsys):
    path = tmp_path / "passwd"
    assert luxnode_passwd("-c", "-b", path, "alice", "alice-pw") == 0
    assert luxnode_passwd("-H", "sha512", "-b", path, "bob", "bob pw") == 0
    assert luxnode_passwd("-b", path, "dave", "dave-pw") == 0
    assert luxnode_passwd("-D", path, "dave") == 0
    code, output = interactive_passwd(path, "carol", answers=["carol-pw", "carol-pw"])
    assert code == 0, output
    assert "Password:" in output and "Reenter password:" in output and "carol-pw" not in output
    # -U: a hand-written plain-text file, as mosquitto_passwd -U converts it
    plain = tmp_path / "plain"
    plain.write_text("erin:erin-pw\n")
    assert luxnode_passwd("-U", plain) == 0
    with path.open("a") as f:
        f.write(plain.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = passwd.read_file(path)
    assert list(entries) == ["alice", "bob", "carol", "erin"]
    assert entries["bob"].startswith("$6$") and entries["alice"].startswith("$7$101$")

    broker = mosquitto(f"password_file {path}\n")
    for user, password in [("alice", "alice-pw"), ("bob", "bob pw"), ("carol", "carol-pw"), ("erin", "erin-pw")]:
        result = mosquitto_pub(broker.port, user, password)
        assert result.returncode == 0, (user, result.stderr, broker.log_text())
    for user, password in [("alice", "wrong"), ("dave", "dave-pw")]:
        result = mosquitto_pub(broker.port, user, password)
        assert result.returncode != 0, user
        assert "not authorised" in result.stderr.lower() or "not authorized" in result.stderr.lower()


def test_update_replaces_the_hash(tmp_path):
    path = tmp_path / "passwd"
    luxnode_passwd("-c", "-b", path, "alice", "old")
    luxnode_passwd("-b", path, "alice", "new")
    hashed = passwd.read_file(path)["alice"]
    assert passwd.verify("new", hashed) and not passwd.verify("old", hashed)


def test_upgrade_keeps_existing_hashes(tmp_path):
    path = tmp_path / "passwd"
    hashed = passwd.hash_password("kept", "6")
    path.write_text(f"# comment\nalice:{hashed}\nbob:plain pw\n")
    assert luxnode_passwd("-U", path) == 0
    entries = passwd.read_file(path)
    assert entries["alice"] == hashed
    assert passwd.verify("plain pw", entries["bob"])


def test_mismatched_interactive_passwords_change_nothing(tmp_path):
    path = tmp_path / "passwd"
    luxnode_passwd("-c", "-b", path, "alice", "pw")
    before = path.read_text()
    code, output = interactive_passwd(path, "carol", answers=["one", "two"])
    assert code == 2 and "passwords do not match" in output
    assert path.read_text() == before


@pytest.mark.parametrize("args, message", [
    (["-c", "-D", "{f}", "alice"], "-c and -D cannot be used together"),
    (["-b", "{missing}", "alice", "pw"], "does not exist; use -c to create it"),
    (["-b", "{f}", "al:ice", "pw"], "invalid username 'al:ice'"),
    (["-D", "{f}", "nobody"], "user 'nobody' is not in"),
    (["-b", "{f}", "alice"], "give PASSWORD together with -b"),
    (["-U", "{f}", "alice"], "-U takes only the password file"),
    (["-b", "{corrupt}", "alice", "pw"], "corrupt:2: expected 'username:hash'"),
])
def test_errors_are_one_line_and_change_nothing(tmp_path, capsys, args, message):
    f = tmp_path / "passwd"
    luxnode_passwd("-c", "-b", f, "alice", "pw")
    corrupt = tmp_path / "corrupt"
    corrupt.write_text(f"alice:{passwd.hash_password('pw')}\ngarbage\n")
    before = {p: p.read_text() for p in (f, corrupt)}
    capsys.readouterr()
    args = [a.format(f=f, missing=tmp_path / "missing", corrupt=corrupt) for a in args]
    assert luxnode_passwd(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("luxnode passwd: error: ") and message in err and err.count("\n") == 1
    assert {p: p.read_text() for p in (f, corrupt)} == before
    assert not (tmp_path / "missing").exists()


def test_editing_keeps_the_owner_so_mosquitto_can_still_read_it():
    """Run as root on a file owned by the broker's user: it stays that user's (0600), and
    mosquitto, which drops to that user before reading it, still can."""
    import pwd
    import shutil
    import tempfile

    from tests.support.net import free_port, port_open, wait_for

    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    broker_user = pwd.getpwnam("mosquitto")
    with tempfile.TemporaryDirectory() as folder:    # outside pytest's 0700 folders
        os.chmod(folder, 0o755)
        path = f"{folder}/passwd"
        luxnode_passwd("-c", "-b", path, "alice", "alice-pw")
        os.chown(path, broker_user.pw_uid, broker_user.pw_gid)
        assert luxnode_passwd("-b", path, "bob", "bob-pw") == 0
        info = os.stat(path)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
            broker_user.pw_uid, broker_user.pw_gid, 0o600)
        port = free_port()
        with open(f"{folder}/mosquitto.conf", "w") as conf:
            conf.write(f"user mosquitto\nlistener {port} 127.0.0.1\npassword_file {path}\n")
        broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", conf.name],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: broker.poll() is not None or port_open(port), what="mosquitto to listen")
            assert broker.poll() is None, broker.stderr.read()
            assert mosquitto_pub(port, "bob", "bob-pw").returncode == 0
        finally:
            broker.terminate()
            broker.wait(10)
