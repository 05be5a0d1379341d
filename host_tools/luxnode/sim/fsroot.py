"""A simulated node's filesystem root, written from command-line options."""

import json
from pathlib import Path

from luxnode import boards
from luxnode.files import write_private


def node_config(device_id: str, host: str, port: int, *, board: str = "sim", prefix: str = "luxnode",
                username: str | None = None, password: str | None = None,
                psk_identity: str | None = None, psk_key: str | None = None,
                keepalive: int = 60, client_id: str | None = None, interval_s: float = 5,
                telemetry_s: float | None = None) -> dict:
    """config.json as provisioning writes it (SPEC "Node configuration"), for the sim's bench."""
    mqtt = {"host": host, "port": port, "client_id": client_id or f"luxnode-{device_id}",
            "keepalive": keepalive, "prefix": prefix, "clean_session": False}
    if username:
        mqtt["username"] = username
        mqtt["password"] = password or ""
    if psk_key:
        mqtt["tls"] = {"mode": "psk", "identity": psk_identity or device_id, "key": psk_key}
    config = {
        "device_id": device_id, "board": board,
        "wifi": {"ssid": "luxnode-sim", "password": ""},
        "mqtt": mqtt,
        "sensor": {"interval_s": interval_s, "deadband": 1.0, **_calibration(board)},
        "dimmer": {"freq": 1000, "invert": True, "gamma": 2.2, "fade_ms": 500},
    }
    if telemetry_s is not None:
        config["telemetry_s"] = telemetry_s
    return config


def _calibration(board: str) -> dict:
    """The bench's photoresistor range (5 %..95 % of the scale) in the board's ADC counts."""
    top = (1 << boards.load(board).get("adc", {}).get("bits", 12)) - 1
    return {"dark_raw": round(top * 200 / 4095), "bright_raw": round(top * 3900 / 4095)}


def write_root(folder: Path, config: dict) -> Path:
    """Write config.json (0600: it holds secrets) and board.json; keep what the node wrote itself."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_private(folder / "config.json", json.dumps(config, indent=1) + "\n")
    (folder / "board.json").write_text(json.dumps(boards.load(config["board"]), indent=1) + "\n")
    return folder
