"""The IP addresses of one network interface, for ``bind_interface`` (Linux, via getifaddrs).

mosquitto binds such a listener to the interface's addresses only; so does the
lab broker. An interface that does not exist or has no address of the wanted
family stops startup: listening anywhere else would be more open than asked.
"""

import ctypes
import ctypes.util
import socket

from luxnode.errors import LuxnodeError


class _Sockaddr(ctypes.Structure):
    _fields_ = [("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_ubyte * 14)]


class _Sockaddr6(ctypes.Structure):
    _fields_ = [("sin6_family", ctypes.c_ushort), ("sin6_port", ctypes.c_ushort),
                ("sin6_flowinfo", ctypes.c_uint32), ("sin6_addr", ctypes.c_ubyte * 16),
                ("sin6_scope_id", ctypes.c_uint32)]


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [("ifa_next", ctypes.POINTER(_Ifaddrs)), ("ifa_name", ctypes.c_char_p),
                     ("ifa_flags", ctypes.c_uint), ("ifa_addr", ctypes.POINTER(_Sockaddr)),
                     ("ifa_netmask", ctypes.POINTER(_Sockaddr)), ("ifa_ifu", ctypes.POINTER(_Sockaddr)),
                     ("ifa_data", ctypes.c_void_p)]


def all_addresses() -> list[tuple[str, int, str]]:
    """(interface, family, address) for every address on this machine."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs failed")
    found = []
    try:
        entry = head
        while entry:
            ifa = entry.contents
            if ifa.ifa_addr:
                family = ifa.ifa_addr.contents.sa_family
                name = ifa.ifa_name.decode()
                if family == socket.AF_INET:
                    found.append((name, family, socket.inet_ntop(family, bytes(ifa.ifa_addr.contents.sa_data[2:6]))))
                elif family == socket.AF_INET6:
                    six = ctypes.cast(ifa.ifa_addr, ctypes.POINTER(_Sockaddr6)).contents
                    address = socket.inet_ntop(family, bytes(six.sin6_addr))
                    if six.sin6_scope_id:  # link-local: only meaningful with its interface
                        address = f"{address}%{name}"
                    found.append((name, family, address))
            entry = ifa.ifa_next
    finally:
        libc.freeifaddrs(head)
    return found


def addresses(interface: str, family: int = socket.AF_UNSPEC) -> list[str]:
    """The addresses to bind for ``bind_interface interface`` (IPv4 first)."""
    try:
        entries = all_addresses()
    except OSError as exc:
        raise LuxnodeError(f"bind_interface {interface}: cannot list network interfaces: {exc}") from None
    names = {name for name, _, _ in entries}
    if interface not in names:
        known = ", ".join(sorted(names)) or "none"
        raise LuxnodeError(f"bind_interface {interface}: no such interface with an address (interfaces: {known})")
    chosen = [(fam, address) for name, fam, address in entries
              if name == interface and family in (socket.AF_UNSPEC, fam)]
    if not chosen:
        kind = "IPv4" if family == socket.AF_INET else "IPv6"
        raise LuxnodeError(f"bind_interface {interface}: the interface has no {kind} address (socket_domain)")
    chosen.sort(key=lambda item: item[0] != socket.AF_INET)
    return [address for _, address in chosen]
