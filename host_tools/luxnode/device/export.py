"""``luxnode export mosquitto DIR``: the lab's auth files and a mosquitto.conf for a real broker.

The files are mosquitto's own formats (the lab broker reads the same ones), so
moving to mosquitto is copying a folder.
"""

from pathlib import Path

from luxnode.errors import LuxnodeError


def render_conf(folder: Path, broker: dict) -> str:
    folder = folder.resolve()
    return f"""\
# mosquitto.conf written by `luxnode export mosquitto` (mosquitto 2.0).
# The paths are absolute: if you move this folder, edit them or export again.
# Send mosquitto SIGHUP after re-provisioning to reload the three auth files.
per_listener_settings false
allow_anonymous false
password_file {folder / 'passwd'}
acl_file {folder / 'acl'}
psk_file {folder / 'psk'}

# Operators and nodes without TLS: username and password. The passwords cross the
# network in clear text: keep this listener on a trusted network, or add
# cafile/certfile/keyfile here.
listener {broker['password_port']}

# Nodes with TLS-PSK: the PSK identity (the device id) becomes the username,
# so the ACL's %u patterns confine each node to its own topics.
listener {broker['psk_port']}
psk_hint luxnode
use_identity_as_username true

# The lab dashboard (MQTT over WebSocket), operator login.
listener {broker['ws_port']}
protocol websockets
"""


def export(folder: Path) -> list[Path]:
    from luxnode import home as lab_home
    from luxnode.device import authfiles, registry as reg
    from luxnode.files import write_private

    if not reg.path().exists():
        raise LuxnodeError("no registry yet: provision a device first (luxnode provision ...)")
    registry = reg.load()
    home = lab_home.home()
    sources = [home / lab_home.PASSWORD_FILE, home / lab_home.PSK_FILE, home / lab_home.ACL_FILE]
    if not all(p.exists() for p in sources):
        authfiles.write(registry)
    conf = folder / "mosquitto.conf"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for source in sources:
            write_private(folder / source.name, source.read_bytes())
        conf.write_text(render_conf(folder, registry["broker"]))  # no secrets in it
    except OSError as exc:
        raise LuxnodeError(f"cannot write into {folder}: {exc.strerror or exc}; choose a folder you can write") from None
    return [conf, *(folder / source.name for source in sources)]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="write a mosquitto.conf and the auth files for a production broker",
        description="Write mosquitto.conf plus password_file, psk_file and acl_file for the "
                    "provisioned devices into DIR, ready for a real mosquitto.")
    parser.add_argument("target", choices=("mosquitto",), help="the broker to export for")
    parser.add_argument("folder", type=Path, metavar="DIR")
    parser.set_defaults(func=run)


def run(args) -> int:
    written = export(args.folder)
    for path in written:
        print(f"wrote {path}")
    print(f"run: mosquitto -c {written[0].resolve()}")
    return 0
