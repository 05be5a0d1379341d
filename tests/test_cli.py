import subprocess
import sys

from luxnode import boards
from luxnode.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "luxnode" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "luxnode", "--help"], capture_output=True, text=True, check=True)
    assert "usage: luxnode" in out.stdout


def test_board_files_carry_what_the_contract_lists():
    offsets = {"esp32": "0x1000", "esp32s3": "0x0", "esp32c3": "0x0", "esp8266": "0x0"}
    assert set(offsets) | {"sim"} <= set(boards.names())
    for name, offset in offsets.items():
        board = boards.load(name)
        assert board["flash_offset"] == offset
        assert {"pin", "bits", "atten_db"} <= set(board["adc"])
        assert {"pin", "freq_min", "freq_max"} <= set(board["pwm"])
    assert boards.load("esp8266")["capabilities"] == {
        "tls_psk": False, "tls_cert": False, "pwm_invert": False, "rtc_memory": True}
    assert boards.load("esp32")["capabilities"]["tls_psk"] is True
