"""Where the lab listens: every interface (the default), or one IPv4 address (``luxnode lab --bind``).

The address is mosquitto's ``listener PORT ADDRESS``: the broker's node and password
listeners and the SNTP server listen on it. The dashboard and its WebSocket listener are
for this machine's browser and stay on loopback: on the --bind address when that is a
loopback one, else on 127.0.0.1. The lab remembers the address in the registry
(``broker.bind``), beside its ports, and tools on this machine reach the broker at
``broker.host``, which the lab sets to match.
"""

import errno
import ipaddress
import socket

from luxnode.errors import LuxnodeError

ALL = "all"
LOOPBACK = "127.0.0.1"
_LOOPBACK_NAMES = ("localhost", "localhost.")


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local_address(address: str) -> bool:
    """Whether this machine has the IP ``address`` (binding a socket to it sends nothing)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        return False
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


class LabAddress:
    """The lab's listening address: ``address`` is None for every interface, else one IPv4 address."""

    def __init__(self, address: str | None):
        self.address = address

    @classmethod
    def parse(cls, text: str) -> "LabAddress":
        """--bind's value: 'all', 'localhost' or an IPv4 address; refused with a one-line reason."""
        if text.lower() == ALL:
            return cls(None)
        if text.lower() in _LOOPBACK_NAMES:
            return cls(LOOPBACK)
        try:
            address = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            raise LuxnodeError(f"--bind {text!r}: give an IPv4 address of this machine (127.0.0.1 for this "
                               "machine only, or a LAN address), or 'all' for every interface") from None
        if address.version == 6:
            raise LuxnodeError(f"--bind {text}: the nodes speak IPv4 only, so a lab on an IPv6 address alone "
                               "would serve none; give an IPv4 address (127.0.0.1 for this machine only), or 'all'")
        return cls(str(address))

    @property
    def is_all(self) -> bool:
        return self.address is None

    @property
    def is_loopback(self) -> bool:
        return self.address is not None and ipaddress.ip_address(self.address).is_loopback

    @property
    def setting(self) -> str:
        """As the registry keeps it and --bind takes it."""
        return self.address or ALL

    @property
    def is_every_ipv4(self) -> bool:
        return self.address is not None and ipaddress.ip_address(self.address).is_unspecified

    @property
    def connect_host(self) -> str:
        """Where tools and simulated nodes on this machine reach the lab's listeners."""
        return LOOPBACK if self.is_all or self.is_every_ipv4 else self.address

    @property
    def web_host(self) -> str:
        """The dashboard's and its WebSocket's address: loopback always."""
        return self.address if self.is_loopback else LOOPBACK

    def describe(self) -> str:
        if self.is_all:
            return "all interfaces"
        if self.is_every_ipv4:
            return "all IPv4 interfaces"
        return f"{self.address} only"

    def check_local(self, remembered: bool) -> None:
        """Refuse, in one line, an address this machine does not have (or cannot listen on)."""
        if self.address is None:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((self.address, 0))
                return
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    reason = "no such address on this machine"
                else:
                    reason = exc.strerror or str(exc)
        hint = (f" (remembered from an earlier 'luxnode lab --bind {self.address}'; give --bind all or "
                "another address)") if remembered else " (--bind: 'ip -brief address' lists this machine's)"
        raise LuxnodeError(f"cannot listen on {self.address}: {reason}{hint}")


def board_reach_warning(broker_host: str, lab_broker: dict) -> str | None:
    """Why a board provisioned with ``broker_host`` would not reach the broker, as far as this machine
    can tell without sending anything; None when nothing is wrong that it can see."""
    if _loopback(broker_host):
        return (f"--broker {broker_host} is a loopback address: a board reaches no broker there (it is the "
                "board itself); give this machine's LAN address, with a lab started with --bind all or that address")
    try:
        lab = LabAddress.parse(str(lab_broker.get("bind", ALL)))
    except LuxnodeError:
        return None  # 'luxnode lab' itself names a broken setting
    if lab.is_all or lab.is_every_ipv4 or lab.address == broker_host or not is_local_address(broker_host):
        return None
    return (f"the lab listens on {lab.describe()} (luxnode lab --bind {lab.address}): a board cannot reach it at "
            f"{broker_host}; restart the lab with --bind {broker_host} or --bind all")
