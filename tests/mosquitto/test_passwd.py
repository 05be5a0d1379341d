"""password_file: mosquitto_passwd's hashes verify here, and ours have its exact shape."""

import base64
import hashlib
import stat
import subprocess

import pytest

from luxnode.mosquitto import passwd


def mosquitto_passwd(*args):
    subprocess.run(["mosquitto_passwd", *map(str, args)], check=True, capture_output=True)


@pytest.mark.parametrize("hash_option", ["sha512-pbkdf2", "sha512"])
def test_a_file_written_by_mosquitto_passwd_verifies_here(tmp_path, hash_option):
    path = tmp_path / "passwd"
    mosquitto_passwd("-H", hash_option, "-c", "-b", path, "alice", "s3cret")
    mosquitto_passwd("-H", hash_option, "-b", path, "bob", "pässwörd with spaces")
    entries = passwd.read_file(path)
    assert set(entries) == {"alice", "bob"}
    assert entries["alice"].startswith("$7$101$" if hash_option == "sha512-pbkdf2" else "$6$")
    assert passwd.verify("s3cret", entries["alice"])
    assert passwd.verify("pässwörd with spaces".encode(), entries["bob"])
    assert not passwd.verify("s3creT", entries["alice"])
    assert not passwd.verify(b"", entries["bob"])


def test_pbkdf2_hash_is_mosquittos_format():
    hashed = passwd.hash_password("hunter2")
    empty, kind, rounds, salt_b64, digest_b64 = hashed.split("$")
    salt = base64.b64decode(salt_b64, validate=True)
    assert (empty, kind, rounds, len(salt)) == ("", "7", "101", 12)
    assert base64.b64decode(digest_b64) == hashlib.pbkdf2_hmac("sha512", b"hunter2", salt, 101, 64)
    assert hashed != passwd.hash_password("hunter2"), "every hash gets a fresh salt"


def test_sha512_hash_is_mosquittos_format():
    hashed = passwd.hash_password("hunter2", "6")
    empty, kind, salt_b64, digest_b64 = hashed.split("$")
    salt = base64.b64decode(salt_b64)
    assert (empty, kind, len(salt)) == ("", "6", 12)
    assert base64.b64decode(digest_b64) == hashlib.sha512(b"hunter2" + salt).digest()
    assert passwd.verify("hunter2", hashed) and not passwd.verify("hunter3", hashed)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown hash kind"):
        passwd.hash_password("x", "5")


@pytest.mark.parametrize("hashed", [
    "plain-text", "$5$abc$def", "$7$101$short$hash", "$7$abc$AAAAAAAAAAAAAAAA$" + "A" * 88,
    "$6$!!!!$" + "A" * 88, "",
])
def test_malformed_hashes_never_verify(hashed):
    assert not passwd.verify("anything", hashed)


@pytest.mark.parametrize("line, problem", [
    ("alice", "no ':' on this line"),
    (":$6$x$y", "empty username"),
    ("alice:plaintext", "alice': password is not a mosquitto hash"),
    ("alice:$7$0$AAAAAAAAAAAAAAAA$" + "A" * 86 + "==", "invalid iteration count"),
    ("alice:$7$101$AAAA$" + "A" * 86 + "==", "salt is 3 bytes"),
    ("alice:$6$AAAAAAAAAAAAAAAA$AAAA", "hash is 3 bytes"),
    ("alice:$6$AAAAAAAAAAAAAAAA$not*base64", "hash is not valid base64"),
])
def test_malformed_lines_name_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "passwd"
    good = "bob:" + passwd.hash_password("pw", "6")
    path.write_text(f"# users\n{good}\n\n{line}\n")
    with pytest.raises(passwd.PasswdError) as err:
        passwd.read_file(path)
    assert str(err.value).startswith(f"{path}:4: ")
    assert problem in str(err.value)


def test_duplicate_user_is_an_error(tmp_path):
    path = tmp_path / "passwd"
    hashed = passwd.hash_password("pw")
    path.write_text(f"bob:{hashed}\nbob:{hashed}\n")
    with pytest.raises(passwd.PasswdError, match=r"passwd:2: user 'bob' is listed twice"):
        passwd.read_file(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(passwd.PasswdError, match="cannot read password file"):
        passwd.read_file(tmp_path / "nope")


def test_write_file_is_private_and_round_trips(tmp_path):
    path = tmp_path / "passwd"
    entries = {"alice": passwd.hash_password("a"), "bob": passwd.hash_password("b", "6")}
    passwd.write_file(path, entries)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert passwd.read_file(path) == entries
    with pytest.raises(ValueError, match="invalid username"):
        passwd.write_file(path, {"a:b": entries["alice"]})
