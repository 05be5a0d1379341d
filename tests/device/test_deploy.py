"""luxnode deploy against the MicroPython unix port on a pty (mpremote's transport, mpy-cross)."""

import hashlib
import json

from luxnode.device.link import BoardLink

from tests.device.helpers import one_line_error, run_cli, tiny_firmware


def test_deploy_compiles_modules_copies_the_tree_and_soft_resets(tmp_path, pty_board, capsys):
    source = tiny_firmware(tmp_path / "fw")
    board = pty_board()
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--source", source)
    assert code == 0, err
    assert "MicroPython 1.29.0" in out and ".mpy v6.3 (x64)" in out and "board sim" in out
    assert "5 copied, 0 up to date, 0 removed" in out
    root = board.root
    assert (root / "boot.py").read_text() == "print('boot')\n"  # run by name: stays source
    assert not (root / "lux" / "app.py").exists()
    for name in ("app", "util"):
        header = (root / "lux" / f"{name}.mpy").read_bytes()[:2]
        assert header == b"M\x06"
    assert json.loads((root / "board.json").read_text())["name"] == "sim"
    assert board.wait_exit() is not None  # the soft reset ended the unix port


def test_deployed_bytecode_runs_on_the_board(tmp_path, pty_board, capsys):
    source = tiny_firmware(tmp_path / "fw")
    board = pty_board()
    code, _, err = run_cli(capsys, "deploy", "--port", board.port, "--source", source, "--no-reset")
    assert code == 0, err
    with BoardLink(board.port) as link:
        assert link.exec("import lux.app\nprint(lux.app.run())").strip() == b"42"


def test_redeploy_copies_only_changes_and_removes_stale_files(tmp_path, pty_board, capsys):
    source = tiny_firmware(tmp_path / "fw")
    board = pty_board()
    assert run_cli(capsys, "deploy", "--port", board.port, "--source", source, "--no-reset")[0] == 0
    (board.root / "config.json").write_text('{"device_id": "keep-me"}')
    (board.root / "state.json").write_text("{}")
    (source / "lux" / "util.py").write_text("ANSWER = 43\n")
    (source / "lux" / "app.py").unlink()
    (source / "lux" / "extra.py").write_text("E = 1\n")
    before = hashlib.sha256((board.root / "boot.py").read_bytes()).hexdigest()

    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--source", source, "--no-reset")
    assert code == 0, err
    assert "2 copied, 3 up to date, 1 removed" in out
    assert "copied  lux/util.mpy" in out and "copied  lux/extra.mpy" in out
    assert "removed lux/app.mpy" in out
    assert not (board.root / "lux" / "app.mpy").exists()
    assert (board.root / "config.json").read_text() == '{"device_id": "keep-me"}'
    assert (board.root / "state.json").exists()
    assert hashlib.sha256((board.root / "boot.py").read_bytes()).hexdigest() == before

    code, out, _ = run_cli(capsys, "deploy", "--port", board.port, "--source", source, "--no-reset")
    assert "0 copied, 5 up to date, 0 removed" in out

    # a top-level file the firmware no longer has goes too (the last deploy listed it)
    (source / "extra.py").write_text("pass\n")
    assert "1 copied" in run_cli(capsys, "deploy", "--port", board.port, "--source", source, "--no-reset")[1]
    (source / "extra.py").unlink()
    code, out, _ = run_cli(capsys, "deploy", "--port", board.port, "--source", source, "--no-reset")
    assert "0 copied, 5 up to date, 1 removed" in out and "removed extra.py" in out
    assert not (board.root / "extra.py").exists() and (board.root / "config.json").exists()


def test_real_firmware_deploys_and_every_module_imports(pty_board, capsys):
    board = pty_board()
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--no-reset")
    assert code == 0, err
    modules = sorted(p.stem for p in (board.root / "lux").glob("*.mpy"))
    assert modules and not list((board.root / "lux").glob("*.py"))
    with BoardLink(board.port) as link:
        # machine/network are the board's; import the rest from bytecode to prove the ABI fits.
        script = "import sys\nfor m in %r:\n try:\n  __import__('lux.' + m)\n  print(m, 'ok')\n except ImportError as e:\n  print(m, 'needs', e)\n" % modules
        lines = link.exec(script).decode().splitlines()
    assert any(line.endswith(" ok") for line in lines), lines


def test_board_file_for_another_chip_is_refused(tmp_path, pty_board, capsys):
    board = pty_board()
    code, _, err = run_cli(capsys, "deploy", "--port", board.port, "--source",
                           tiny_firmware(tmp_path / "fw"), "--board", "esp32")
    one_line_error(code, err, "'esp32' is for ESP32", "--board sim")


def test_deploying_to_a_provisioned_board_records_its_firmware_version(tmp_path, pty_board, lab_home, capsys):
    source = tiny_firmware(tmp_path / "fw")
    board = pty_board()
    code, _, err = run_cli(capsys, "provision", "--port", board.port, "--board", "sim", "--device-id", "node-9",
                           "--wifi-ssid", "lab", "--broker", "127.0.0.1", "--no-reset")
    assert code == 0, err
    (source / "lux" / "version.py").write_text('VERSION = "9.9.9"\n')
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--source", source, "--no-reset")
    assert code == 0, err
    assert "registry: node-9 now runs firmware 9.9.9" in out
    assert json.loads((lab_home / "registry.json").read_text())["devices"]["node-9"]["firmware"] == "9.9.9"


def test_a_source_that_is_not_a_folder_is_one_line(tmp_path, capsys):
    for source in (tmp_path / "missing", tiny_firmware(tmp_path / "fw") / "boot.py"):
        code, _, err = run_cli(capsys, "deploy", "--port", tmp_path / "ttyUSB0", "--source", source)
        one_line_error(code, err, f"--source {source} is not a folder")
