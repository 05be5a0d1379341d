"""The soft reset that ends luxnode deploy and provision is no failed boot: safe mode's boot-loop
count (lux.safemode, in RTC memory) is forgotten first, because an ESP8266 reports a Ctrl-D as its
last hardware reset, which is SOFT_RESET after a crash reset (the faithful ESP8266 on a pty)."""

from tests.device.helpers import run_cli

THREE_BOOTS = b"LXB\x03"  # three boots in a row without a stable run: one more is safe mode


def board_with_three_boots(tmp_path, chip_board):
    rtc = tmp_path / "rtc"
    rtc.write_bytes(THREE_BOOTS)
    return chip_board("esp8266", env={"LUXNODE_SIM_RTC": str(rtc)}), rtc


def test_deploy_forgets_the_boot_count_before_its_soft_reset(tmp_path, chip_board, capsys):
    board, rtc = board_with_three_boots(tmp_path, chip_board)
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--no-reset", "--timeout", "30")
    assert code == 0, err
    assert rtc.read_bytes() == THREE_BOOTS  # no reset: the count is the firmware's to keep

    board = chip_board("esp8266", board.root, env={"LUXNODE_SIM_RTC": str(rtc)})
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--timeout", "30")
    assert code == 0, err
    assert "soft reset: the board starts the firmware" in out
    assert board.wait_exit() is not None
    assert rtc.read_bytes() == b"LXB\x00"


def test_provision_forgets_it_too(tmp_path, chip_board, capsys, lab_home):
    board, rtc = board_with_three_boots(tmp_path, chip_board)
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--no-reset", "--timeout", "30")
    assert code == 0, err
    code, out, err = run_cli(capsys, "provision", "--port", board.port, "--device-id", "node-1", "--wifi-ssid", "lab",
                             "--wifi-password", "wifi-secret", "--broker", "192.0.2.10", "--tls", "none")
    assert code == 0, err
    assert board.wait_exit() is not None
    assert rtc.read_bytes() == b"LXB\x00"
