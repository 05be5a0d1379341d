"""``luxnode provision``: give a node its own credentials and tell the broker.

The board's config.json is written first: if the board cannot be reached,
nothing on the host changes. Then the registry and the broker's auth files are
rewritten (0600, atomically) and a running lab broker is sent SIGHUP, so the
new key works at once and the old one stops working.
"""

import json
import os
import sys
from pathlib import Path

from luxnode.errors import LuxnodeError

WIFI_PASSWORD_ENV = "LUXNODE_WIFI_PASSWORD"


def hidden(secret: str, show: bool) -> str:
    return secret if show else f"({len(secret)} characters, hidden; --show-secrets prints it)"


class FolderTarget:
    """A node folder on this machine (a simulated node's filesystem)."""

    def __init__(self, folder: Path):
        if not folder.is_dir():
            raise LuxnodeError(f"{folder} is not a folder: create it, or pass --port for a board")
        self.folder = folder

    def info(self) -> dict:
        board = None
        try:
            board = json.loads((self.folder / "board.json").read_text()).get("name")
        except (OSError, ValueError):
            pass
        return {"board": board, "version": None}

    def choose_board(self, info: dict, requested: str | None) -> str:
        if requested or info.get("board"):
            return requested or info["board"]
        raise LuxnodeError("the node folder has no board.json: pass --board, or deploy to it first")

    def read_config(self) -> bytes | None:
        path = self.folder / "config.json"
        try:
            return path.read_bytes() if path.exists() else None
        except OSError as exc:
            raise LuxnodeError(f"cannot read {path}: {exc.strerror}") from None

    def write(self, name: str, data: bytes) -> None:
        from luxnode.files import write_private

        try:
            write_private(self.folder / name, data)
        except OSError as exc:
            raise LuxnodeError(f"cannot write {self.folder / name}: {exc.strerror}") from None

    def add_board_file(self, board: dict) -> None:
        """A folder booted by ``luxnode sim --fs`` needs board.json, which deploy puts on a real board."""
        path = self.folder / "board.json"
        if not path.exists():
            try:
                path.write_text(json.dumps(board, indent=1) + "\n")
            except OSError as exc:
                raise LuxnodeError(f"cannot write {path}: {exc.strerror}") from None

    def finish(self, reset: bool) -> None:
        pass


class BoardTarget:
    """A board on a serial port."""

    def __init__(self, link):
        self.link = link

    def info(self) -> dict:
        from luxnode.device import board_info

        return board_info.query(self.link, ["board.json", "config.json"])

    def choose_board(self, info: dict, requested: str | None) -> str:
        from luxnode.device import board_info

        return board_info.choose_board(info, requested)

    def read_config(self) -> bytes | None:
        return self.link.read_file("config.json")

    def write(self, name: str, data: bytes) -> None:
        self.link.write_file(name, data)

    def add_board_file(self, board: dict) -> None:
        pass   # deploy writes it with the firmware

    def finish(self, reset: bool) -> None:
        if reset:
            self.link.restart_node()
        else:
            self.link.close()


def previous_config(raw: bytes | None) -> dict | None:
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError:
        return None  # a broken config is replaced whole
    return config if isinstance(config, dict) else None


def ntp_server(args, tls: str, broker_host: str, lab_broker: dict) -> str | None:
    """config.json's ntp_server: --ntp-server, else the lab's time server where the node needs the time."""
    from luxnode.device import nodeconfig

    text = getattr(args, "ntp_server", None)
    if text is None:
        port = lab_broker.get("ntp_port")  # recorded by 'luxnode lab'
        # The firmware's SNTP speaks IPv4 and reads host:port, so no IPv6 literal.
        return f"{broker_host}:{port}" if tls == "cert" and port and ":" not in broker_host else None
    host, colon, port = text.partition(":")
    if not host or not nodeconfig._is_host(host):
        raise LuxnodeError(f"--ntp-server {text!r}: give the time server as an IPv4 address or a host name "
                           "(HOST[:PORT], port 123 by default)")
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        raise LuxnodeError(f"--ntp-server {text!r}: the port must be a number 1-65535 (HOST[:PORT])")
    return f"{host}:{int(port)}" if colon else host


def provision(args, target) -> dict:
    from luxnode import boards
    from luxnode.device import authfiles, nodeconfig, registry as reg
    from luxnode.device import requirements
    from luxnode.device.deploy import firmware_version
    from luxnode.paths import FIRMWARE_DIR

    device_id = reg.check_device_id(args.device_id)
    registry = reg.load()
    info = target.info()
    board_name = target.choose_board(info, args.board)
    board = boards.load(board_name)
    tls = args.tls or ("psk" if board["capabilities"]["tls_psk"] else None)
    if tls is None:
        raise LuxnodeError(f"board {board_name} has no TLS-PSK: {nodeconfig.tls_advice(board)}")
    requirements.check(FIRMWARE_DIR, info, tls, board, args.port, args.force, print)
    nodeconfig.check_tls(tls, board, info.get("version"))
    ca = None
    if tls == "cert":
        if not args.ca:
            raise LuxnodeError("--tls cert needs --ca FILE: the CA certificate the node checks the broker with")
        try:
            ca = Path(args.ca).read_bytes()
        except OSError as exc:
            raise LuxnodeError(f"cannot read --ca {args.ca}: {exc.strerror}") from None
        nodeconfig.check_ca(ca, args.ca)
    host, port = nodeconfig.parse_broker(args.broker, tls, registry["broker"])
    wifi_password = args.wifi_password
    if wifi_password is None:
        wifi_password = os.environ.get(WIFI_PASSWORD_ENV, "")
    nodeconfig.check_wifi(args.wifi_ssid, wifi_password)

    credentials = reg.issue_credentials(device_id)
    config = nodeconfig.build(device_id, board, args.wifi_ssid, wifi_password, host, port,
                              registry["broker"]["prefix"], tls, credentials,
                              previous_config(target.read_config()))
    time_source = ntp_server(args, tls, host, registry["broker"])
    if time_source:
        config["ntp_server"] = time_source
    if ca is not None:
        target.write(nodeconfig.CA_NAME, ca)
    target.write("config.json", (json.dumps(config, indent=1) + "\n").encode())
    target.add_board_file(board)

    with reg.locked():
        registry = reg.load()  # again: another run may have saved meanwhile
        entry = reg.record(registry, device_id, board_name, tls, credentials, firmware_version())
        reg.save(registry)
        authfiles.write(registry)
    return {"entry": entry, "config": config, "reload": authfiles.reload_broker()}


def add_parser(subparsers) -> None:
    from luxnode.device.link import add_link_arguments

    parser = subparsers.add_parser(
        "provision", help="issue a node's credentials, write its config.json, update the broker's auth files",
        description="Issue a node's credentials (32-byte PSK, MQTT password), write config.json to the "
                    "board, record it in the registry and update the broker's password, PSK and ACL files. "
                    "Re-provisioning rotates the credentials.")
    add_link_arguments(parser, port_required=False)
    parser.add_argument("--fs", type=Path, metavar="DIR",
                        help="a node folder on this machine instead of a board (for luxnode sim --fs)")
    parser.add_argument("--device-id", required=True)
    parser.add_argument("--wifi-ssid", required=True)
    parser.add_argument("--wifi-password",
                        help=f"WiFi password (default: ${WIFI_PASSWORD_ENV}, else an open network)")
    parser.add_argument("--broker", required=True, metavar="HOST[:PORT]",
                        help="the broker as the node reaches it (default port: 8883 with TLS, 1883 without)")
    parser.add_argument("--tls", choices=("psk", "cert", "none"),
                        help="transport security (default: psk where the board supports it)")
    parser.add_argument("--ca", help="CA certificate for --tls cert (copied to the board as ca.pem)")
    parser.add_argument("--ntp-server", metavar="HOST[:PORT]",
                        help="the time server a --tls cert node sets its clock by (default: the lab's SNTP "
                             "port at the --broker host once 'luxnode lab' has run in this home, else "
                             "the firmware's pool.ntp.org)")
    parser.add_argument("--board", help="board file (default: detected from the board)")
    parser.add_argument("--show-secrets", action="store_true", help="print the issued password and key")
    parser.add_argument("--no-reset", action="store_true", help="do not soft-reset the board afterwards")
    parser.add_argument("--force", action="store_true",
                        help="provision even a MicroPython older than the firmware needs for --tls")
    parser.set_defaults(func=run)


def run(args) -> int:
    if bool(args.port) == bool(args.fs):
        raise LuxnodeError("give either --port PORT (a board) or --fs DIR (a node folder)")
    if args.fs:
        target = FolderTarget(args.fs)
    else:
        from luxnode.device.link import open_link

        target = BoardTarget(open_link(args))
    try:
        result = provision(args, target)
    except BaseException:
        target.finish(reset=False)
        raise
    target.finish(reset=not args.no_reset)
    entry, config = result["entry"], result["config"]
    mqtt = config["mqtt"]
    print(f"provisioned {args.device_id} ({entry['board']}): broker {mqtt['host']}:{mqtt['port']}, "
          f"tls {entry['tls']}")
    print(f"  mqtt username  {entry['username']}")
    print(f"  mqtt password  {hidden(entry['password'], args.show_secrets)}")
    if entry["tls"] == "psk":
        print(f"  psk identity   {entry['psk_identity']}")
        print(f"  psk key        {hidden(entry['psk_key'], args.show_secrets)}")
    if "ntp_server" in config:
        print(f"  ntp server     {config['ntp_server']}")
    print(f"  {result['reload']}")
    if args.port:  # a board; --fs is a simulated node, on this machine
        from luxnode.device import registry
        from luxnode.lab.bind import board_reach_warning

        warning = board_reach_warning(mqtt["host"], registry.load()["broker"])
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    return 0
