import stat

from luxnode.files import write_private
from luxnode.home import home


def test_write_private_is_0600_and_replaces(tmp_path):
    target = tmp_path / "psk"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "node-1:00ff\n")
    assert target.read_text() == "node-1:00ff\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["psk"]


def test_home_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LUXNODE_HOME", str(tmp_path / "lab"))
    assert home() == tmp_path / "lab"
    assert stat.S_IMODE((tmp_path / "lab").stat().st_mode) == 0o700
