"""``luxnode export mosquitto DIR``: the lab's auth files and a mosquitto.conf for a real broker.

The files are mosquitto's own formats (the lab broker reads the same ones), so
moving to mosquitto is copying a folder.
"""

import grp
import os
import pwd
import stat
from pathlib import Path

from luxnode.errors import LuxnodeError
from luxnode.lab.brokerconf import LIMITS

MOSQUITTO_USER = "mosquitto"


def run_as(exporter_uid: int) -> tuple[str | None, str]:
    """(the `user` line's value, why): whom mosquitto runs as, so it can read the 0600 files.

    Started as root, mosquitto switches to `user` (default: mosquitto) before it
    reads password_file; started as anyone else it ignores the line. So the files
    belong to that user: the exporter's own account, or, when root exports, the
    mosquitto account (the files are handed to it), never root where it exists.
    """
    if exporter_uid != 0:
        try:
            name = pwd.getpwuid(exporter_uid).pw_name
        except KeyError:  # a container's uid without a passwd entry: mosquitto can only take names
            return None, (f"# uid {exporter_uid} has no account name, so there is no 'user' line: started as\n"
                          "# root, mosquitto would switch to 'mosquitto'; start it as yourself.")
        return name, (f"# Started as root, mosquitto switches to {name}, who owns the files below;\n"
                      f"# started as {name}, this line has no effect.")
    try:
        pwd.getpwnam(MOSQUITTO_USER)
    except KeyError:
        return "root", ("# There was no 'mosquitto' account when this was exported, so mosquitto keeps\n"
                        "# running as root: create the account, chown the files to it and set 'user mosquitto'.")
    return MOSQUITTO_USER, ("# Started as root, mosquitto switches to the mosquitto account, which owns the\n"
                            "# files below (they hold secrets: 0600).")


def blocking_folder(folder: Path, user: str) -> Path | None:
    """The first folder on the way to ``folder`` that ``user`` may not enter, if any."""
    account = pwd.getpwnam(user)
    if account.pw_uid == 0:
        return None
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for path in [*reversed(folder.resolve().parents), folder.resolve()]:
        info = path.stat()
        if info.st_uid == account.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return path
    return None


def render_conf(folder: Path, broker: dict, user: str | None = MOSQUITTO_USER, user_note: str = "") -> str:
    folder = folder.resolve()
    user_line = f"user {user}\n" if user else ""
    return f"""\
# mosquitto.conf written by `luxnode export mosquitto` (mosquitto 2.0).
# The paths are absolute: if you move this folder, edit them or export again.
# Send mosquitto SIGHUP after re-provisioning to reload the three auth files.
{user_note}
{user_line}per_listener_settings false
allow_anonymous false
password_file {folder / 'passwd'}
acl_file {folder / 'acl'}
psk_file {folder / 'psk'}

{LIMITS}
# Operators and nodes without TLS: username and password. The passwords cross the
# network in clear text: keep this listener on a trusted network, or add
# cafile/certfile/keyfile here. Operator tools share one username, so client ids
# stay theirs here.
listener {broker['password_port']}

# Nodes with TLS-PSK: the PSK identity (the device id) becomes the username,
# so the ACL's %u patterns confine each node to its own topics, and the client id,
# so no node can take over another's session.
listener {broker['psk_port']}
psk_hint luxnode
use_identity_as_username true
use_username_as_clientid true

# The lab dashboard (MQTT over WebSocket), operator login, on this machine only
# (as in the lab); put an address here to serve it to the network. mosquitto 2.0.11
# ignores the address of a websockets listener and listens on every interface
# (fixed in 2.0.12): there, firewall this port or delete these lines.
listener {broker['ws_port']} 127.0.0.1
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
    user, user_note = run_as(os.geteuid())
    try:
        created = not folder.exists()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        written = []
        for source in sources:
            write_private(folder / source.name, source.read_bytes())
            written.append(folder / source.name)
        conf.write_text(render_conf(folder, registry["broker"], user, user_note))  # no secrets in it
        if user == MOSQUITTO_USER and os.geteuid() == 0:
            account = pwd.getpwnam(MOSQUITTO_USER)
            for path in written + ([folder] if created else []):
                os.chown(path, account.pw_uid, account.pw_gid)
    except OSError as exc:
        raise LuxnodeError(f"cannot write into {folder}: {exc.strerror or exc}; choose a folder you can write") from None
    return [conf, *written]


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
    user, _ = run_as(os.geteuid())
    blocked = blocking_folder(args.folder, user) if user else None
    if blocked is not None:
        print(f"note: mosquitto started as root runs as {user}, who cannot enter {blocked} "
              f"(mode {stat.S_IMODE(blocked.stat().st_mode):o}); export to a folder it can reach, "
              "such as /etc/mosquitto/luxnode, or start mosquitto as yourself")
    print(f"run: mosquitto -c {written[0].resolve()}")
    return 0
