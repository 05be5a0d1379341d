"""A node's config.json (SPEC "Node configuration"), built from the registry entry."""

import ipaddress
import re

from luxnode.errors import LuxnodeError

CA_NAME = "ca.pem"
KEEPALIVE_S = 60
DEFAULT_DIMMER = {"freq": 1000, "invert": True, "gamma": 2.2, "fade_ms": 500}
# Sections a user calibrates on the bench; re-provisioning keeps them.
KEPT_SECTIONS = ("sensor", "dimmer", "pins", "telemetry_s")


def parse_broker(text: str, tls: str, broker_defaults: dict) -> tuple[str, int]:
    """HOST[:PORT]; without a port, the lab broker's port for the TLS mode."""
    if text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
        port = broker_defaults["password_port"] if tls == "none" else broker_defaults["psk_port"]
    try:
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise LuxnodeError(f"--broker {text!r}: the port must be a number 1-65535 (HOST[:PORT])") from None
    if not host:
        raise LuxnodeError(f"--broker {text!r}: give the broker's host name or address (HOST[:PORT])")
    if not _is_host(host):
        raise LuxnodeError(f"--broker {text!r}: {host!r} is neither an IP address nor a host name "
                           "(letters, digits, '-' and '.', at most 253 characters)")
    return host, port


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def check_wifi(ssid: str, password: str) -> None:
    """What a board's WLAN accepts (802.11: SSID 1-32 bytes; WPA2 passphrase 8-63 characters)."""
    size = len(ssid.encode())
    if not 1 <= size <= 32:
        raise LuxnodeError(f"--wifi-ssid {ssid!r}: a WiFi network name is 1-32 bytes (this one has {size})")
    if password and not (8 <= len(password) <= 63 and password.isascii() and password.isprintable()):
        raise LuxnodeError(f"--wifi-password: a WPA passphrase is 8-63 printable ASCII characters (this one has "
                           f"{len(password)}); leave it out for an open network")


def check_ca(data: bytes, name: str) -> None:
    """The node's TLS stack loads ca.pem as PEM: refuse anything else before it reaches a board."""
    import ssl

    try:
        ssl.create_default_context(cadata=data.decode("ascii"))
    except (UnicodeDecodeError, ssl.SSLError, ValueError):
        raise LuxnodeError(f"--ca {name}: not a PEM CA certificate (expected '-----BEGIN CERTIFICATE-----')") from None


def default_sensor(board: dict) -> dict:
    full = (1 << (board.get("adc", {}).get("bits") or 12)) - 1
    return {"interval_s": 5, "deadband": 1.0, "dark_raw": round(full * 0.05), "bright_raw": round(full * 0.95)}


def build(device_id: str, board: dict, wifi_ssid: str, wifi_password: str, host: str, port: int,
          prefix: str, tls: str, credentials: dict, previous: dict | None = None) -> dict:
    mqtt = {
        "host": host, "port": port, "client_id": f"luxnode-{device_id}",
        "username": credentials["username"], "password": credentials["password"],
        "keepalive": KEEPALIVE_S, "prefix": prefix,
    }
    if tls == "psk":
        mqtt["tls"] = {"mode": "psk", "identity": credentials["psk_identity"], "key": credentials["psk_key"]}
    elif tls == "cert":
        mqtt["tls"] = {"mode": "cert", "ca": CA_NAME}
    dimmer = dict(DEFAULT_DIMMER, freq=min(DEFAULT_DIMMER["freq"], board["pwm"]["freq_max"]))
    config = {
        "device_id": device_id, "board": board["name"],
        "wifi": {"ssid": wifi_ssid, "password": wifi_password},
        "mqtt": mqtt, "sensor": default_sensor(board), "dimmer": dimmer,
    }
    for key in KEPT_SECTIONS:
        if previous and key in previous:
            config[key] = previous[key]
    return config


def check_tls(tls: str, board: dict, micropython_version: list[int] | None) -> None:
    """Refuse a mode the board cannot do: the firmware never falls back to a weaker one."""
    caps = board["capabilities"]
    if tls == "cert" and not caps["tls_cert"]:
        raise LuxnodeError(f"board {board['name']} cannot verify a broker certificate: {tls_advice(board)}")
    if tls != "psk":
        return
    if not caps["tls_psk"]:
        raise LuxnodeError(f"board {board['name']} has no TLS-PSK: {tls_advice(board)}")
    minimum = board["micropython"].get("min_version_psk")
    if minimum and micropython_version is not None:
        wanted = [int(x) for x in minimum.split(".")]
        if list(micropython_version[: len(wanted)]) < wanted:
            have = ".".join(map(str, micropython_version))
            raise LuxnodeError(
                f"MicroPython {have} on the board has no TLS-PSK (needs >= {minimum}): "
                f"flash a newer build (luxnode flash --board {board['name']}) or use --tls cert"
            )


def tls_advice(board: dict) -> str:
    """What a board without TLS-PSK can do instead (ESP8266: axTLS checks no certificate either)."""
    if board["capabilities"]["tls_cert"]:
        return "use --tls cert --ca FILE, or --tls none on a trusted network"
    return ("its MicroPython (axTLS) has neither TLS-PSK nor certificate checking; "
            "use --tls none on a trusted network, or an ESP32 board for TLS")
