"""The lab broker's configuration, written as a mosquitto.conf.

Three listeners share the auth files that provisioning maintains: TLS-PSK for
the nodes (real and simulated), username/password for operators and tools, and
MQTT over WebSocket on loopback for the dashboard. The first two listen on every
interface, or on the lab's --bind address (luxnode.lab.bind). The same file runs under
mosquitto, so the lab's setup carries over to a production broker.
"""

from dataclasses import dataclass
from pathlib import Path

from luxnode import home as lab_home
from luxnode.lab.bind import LabAddress

PSK_HINT = "luxnode"
# Nodes read into a 512-byte buffer and commands are at most 256 bytes; 16 KiB leaves room for
# Home Assistant discovery and operators while bounding what one connection, authenticated or
# not, can make the broker buffer (max_packet_size bounds CONNECT and the topic too).
MESSAGE_SIZE_LIMIT = 16384
MAX_PACKET_SIZE = 20480
LIMITS = (
    "# Nodes read into a 512-byte buffer; bound what any connection can make the broker buffer.\n"
    f"message_size_limit {MESSAGE_SIZE_LIMIT}\n"
    f"max_packet_size {MAX_PACKET_SIZE}\n"
)


@dataclass
class LabPorts:
    psk: int
    password: int
    ws: int


def render(folder: Path, ports: LabPorts, bind: LabAddress = LabAddress(None)) -> str:
    folder = Path(folder)
    address = f" {bind.address}" if bind.address else ""  # none: every interface
    return (
        "# Written by 'luxnode lab' at every start; edit the lab's options, not this file.\n"
        f"pid_file {folder / lab_home.BROKER_PID}\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {folder / lab_home.PASSWORD_FILE}\n"
        f"psk_file {folder / lab_home.PSK_FILE}\n"
        f"acl_file {folder / lab_home.ACL_FILE}\n"
        f"{LIMITS}"
        "\n"
        "# Nodes: TLS-PSK; the PSK identity is the username the ACL sees and, so that no\n"
        "# node can take over another's session, its client id.\n"
        f"listener {ports.psk}{address}\n"
        f"psk_hint {PSK_HINT}\n"
        "use_identity_as_username true\n"
        "use_username_as_clientid true\n"
        "\n"
        "# Operators and tools (luxnode watch/set, mosquitto_sub): username and password.\n"
        f"listener {ports.password}{address}\n"
        "\n"
        "# The dashboard in the browser, on this machine only.\n"
        f"listener {ports.ws} {bind.web_host}\n"
        "protocol websockets\n"
    )


def write(folder: Path, ports: LabPorts, bind: LabAddress = LabAddress(None)) -> Path:
    path = Path(folder) / lab_home.BROKER_CONF
    path.write_text(render(folder, ports, bind))
    return path
