# The broker's address without blocking: one DNS question over UDP to the station's DNS
# server, whose answer lux.mqttconn polls for like any socket. The ports' getaddrinfo
# waits for the answer (lwIP retries for seconds), longer than the ESP8266's watchdog
# allows. A .local name is asked of the link's mDNS responders instead (RFC 6762 6.7:
# a question from a port other than 5353 gets a unicast answer in DNS form), which a
# router's DNS server does not know. Loaded while a broker name is being resolved.
import random
import socket

_MDNS = ("224.0.0.251", 5353)


def server(host):
    """Where to ask for host: the mDNS group for a .local name, else (address, 53) of the
    DNS server the WiFi station got, or None (then getaddrinfo)."""
    if host.endswith(".local"):
        return _MDNS
    try:
        import network

        wlan = network.WLAN(network.STA_IF)
        if wlan.isconnected():
            return wlan.ifconfig()[3], 53
    except (ImportError, AttributeError, OSError):
        pass
    return None


def numeric(host):
    """True for an IPv4 address, which needs no lookup."""
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def ask(host, server):
    """A non-blocking UDP socket that has sent the question for host's IPv4 address, and
    the question's id."""
    qid = random.getrandbits(16)
    q = bytearray((qid >> 8, qid & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0))  # recursion desired, 1 question
    for label in host.encode().split(b"."):
        q.append(len(label))
        q.extend(label)
    q.extend(b"\0\0\1\0\1")  # type A, class IN
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    addr = socket.getaddrinfo(server[0], server[1])[0][-1]
    if server is _MDNS:  # the answer comes from the responder's own address
        s.sendto(q, addr)
    else:
        # Connected: only the server's datagrams arrive, and where the host reports a closed
        # port (a unix port's loopback; lwIP reports none) recv raises ECONNREFUSED.
        s.connect(addr)
        s.send(q)
    return s, qid


def _skip_name(data, i):
    while True:
        n = data[i]
        if not n:
            return i + 1
        if n & 0xC0 == 0xC0:  # a pointer ends the name
            return i + 2
        i += n + 1


def address(data, qid, host):
    """The first IPv4 address in the answer to question qid, None if data is not that
    answer; OSError if the answer is that host has none, or is cut short."""
    if len(data) < 12 or (data[0] << 8 | data[1]) != qid or not data[2] & 0x80:
        return None
    if data[3] & 15:
        raise OSError("no address for %s (DNS error %d)" % (host, data[3] & 15))
    i = 12
    try:  # counts or lengths past its end raise IndexError: anyone on the link can send one to mDNS
        for _ in range(data[4] << 8 | data[5]):  # the question, echoed
            i = _skip_name(data, i) + 4
        for _ in range(data[6] << 8 | data[7]):
            i = _skip_name(data, i)
            kind, size = data[i] << 8 | data[i + 1], data[i + 8] << 8 | data[i + 9]
            i += 10
            if kind == 1 and size == 4:
                return "%d.%d.%d.%d" % (data[i], data[i + 1], data[i + 2], data[i + 3])
            i += size  # a CNAME on the way
    except IndexError:
        raise OSError("malformed DNS answer for %s" % host)
    raise OSError("no address for %s" % host)
