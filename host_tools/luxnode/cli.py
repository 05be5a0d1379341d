"""The ``luxnode`` console script.

Each command lives in its own module, which provides ``add_parser(subparsers)``;
the parser it adds sets ``func`` to the function that runs the command and
returns an exit code.
"""

import argparse
import importlib
import sys

from luxnode import __version__
from luxnode.errors import LuxnodeError

COMMAND_MODULES = (
    "luxnode.device.devices",
    "luxnode.device.export",
    "luxnode.device.flash",
    "luxnode.device.deploy",
    "luxnode.device.provision",
    "luxnode.sim.command",
    "luxnode.operator.watch",
    "luxnode.operator.set_command",
    "luxnode.lab.cli",
    "luxnode.lab.accounts_command",
    "luxnode.broker.command",
    "luxnode.mosquitto.passwd_command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luxnode",
        description="MicroPython light nodes over MQTT: lab broker, simulator, flashing and provisioning.",
    )
    parser.add_argument("--version", action="version", version=f"luxnode {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def _check_common(args) -> None:
    """Options several commands share, checked once: every wait is a positive time."""
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not timeout > 0:
        raise LuxnodeError(f"--timeout {timeout:g}: expected a positive number of seconds")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_common(args)
        return args.func(args) or 0
    except LuxnodeError as exc:
        print(f"luxnode {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
