"""Item 5 of issue 9: ACL decisions are cached per client, bounded in bytes, and go with
the client.

Topics may be 65,535 bytes long: 20 clients x 1,000 of them once grew the broker from
27 MB to 1.3 GB, never released, denied topics included. Now each cache holds at most
64 KiB, topics over 1 KiB are checked each time instead of kept, and the subscription
match cache is bounded in bytes too."""

import threading

from luxnode.broker.auth import DecisionCache
from luxnode.broker.subscriptions import CACHE_BYTES
from tests.broker_stress import packets as P

from .conftest import connected, rss_mib

ACL = """\
topic write flood/allowed/#
topic read flood/#
"""
CLIENTS = 4
TOPICS = 300
LONG = "x" * 60_000


def flood(port: int, index: int, prefix: str = LONG) -> None:
    sock = connected(port, f"flooder-{index}")
    for n in range(TOPICS):
        verdict = "allowed" if n % 2 else "denied"
        sock.sendall(P.publish(f"flood/{verdict}/{prefix}/{index}/{n}", b"1"))
    sock.sendall(P.PINGREQ)  # answered once every PUBLISH before it was handled
    sock.settimeout(60)
    assert P.read_packet(sock)[0] == 0xD0
    sock.close()


def test_long_topics_do_not_grow_the_broker(luxnode_broker, operator, tmp_path):
    (tmp_path / "acl").write_text(ACL)
    broker = luxnode_broker(f"allow_anonymous true\nacl_file {tmp_path}/acl\n")
    op = operator(broker.port)
    reader = connected(broker.port, "reader")
    reader.sendall(P.subscribe([("flood/#", 0)]))
    assert P.read_packet(reader)[0] == 0x90
    reader.settimeout(60)
    before = rss_mib(broker.proc.pid)
    threads = [threading.Thread(target=flood, args=(broker.port, i)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    received = 0
    expected = CLIENTS * TOPICS // 2
    while received < expected:  # every allowed message reaches the reader, no denied one
        first, body = P.read_packet(reader)
        assert "/denied/" not in P.publish_fields(first, body)[0]
        received += 1
    for thread in threads:
        thread.join(60)
    grown = rss_mib(broker.proc.pid) - before
    print(f"luxnode: {CLIENTS} x {TOPICS} topics of 60 kB: RSS grew {grown:.1f} MiB")
    # The count-bounded caches kept every topic (write, read and match caches): 70 MiB here.
    assert grown <= 32, f"RSS grew {grown:.0f} MiB"
    op.check()


def test_caches_bounded_in_bytes_and_released_on_close(start_broker):
    broker = start_broker()
    port = broker.ports[0]
    sock = connected(port, "many-topics")
    for n in range(2000):
        sock.sendall(P.publish(f"t/{'y' * 900}/{n}", b"1"))
    sock.sendall(P.PINGREQ)
    assert P.read_packet(sock)[0] == 0xD0
    (client,) = broker.call(lambda: [c for c in broker.broker.clients if c.client_id == "many-topics"])
    sizes = broker.call(lambda: (client.write_ok.size, len(client.write_ok)))
    assert 0 < sizes[0] <= DecisionCache.MAX_BYTES, sizes
    assert broker.call(lambda: broker.broker.index._cache_bytes) <= CACHE_BYTES
    sock.sendall(P.DISCONNECT)
    sock.settimeout(5)
    assert sock.recv(1) == b""
    assert broker.call(lambda: (len(client.write_ok), len(client.read_ok), client.write_ok.size)) == (0, 0, 0)
