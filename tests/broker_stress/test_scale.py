"""1,000 concurrent clients with keepalive against `luxnode broker`: every one gets its CONNACK,
SUBACK and PINGRESPs, stays connected past 1.5x its keepalive by pinging, and receives one
QoS 1 message that fans out to all; a silent client is cut off at 1.5x its keepalive."""

import asyncio
import resource
import time

import pytest

from . import packets as P

CLIENTS = 1000
KEEPALIVE = 2  # seconds; the broker cuts a silent client after 1.5x


@pytest.fixture(autouse=True)
def enough_file_descriptors():
    """The test process holds 1,000 sockets and the broker (a child, inheriting the limit) as many."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * CLIENTS + 256
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.fail(f"ulimit -n hard limit {hard} < {need}; raise it to run 1,000 clients")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class ScaleClient:
    def __init__(self, index: int):
        self.client_id = f"scale-{index:04d}"
        self.reader = self.writer = None
        self.pingresps = 0
        self.messages: list[bytes] = []

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(P.connect(self.client_id, keepalive=KEEPALIVE) + P.subscribe([("scale/all", 1)]))
        assert await P.read_packet_async(self.reader) == (0x20, b"\x00\x00"), f"{self.client_id}: CONNACK"
        assert await P.read_packet_async(self.reader) == (0x90, b"\x00\x01\x01"), f"{self.client_id}: SUBACK"

    async def ping(self) -> None:
        """PINGREQ every keepalive/2 from the client's own connect, as a real client schedules it."""
        while True:
            await asyncio.sleep(KEEPALIVE / 2)
            self.writer.write(P.PINGREQ)

    async def serve(self) -> None:
        """Answer the broker until it closes: count PINGRESPs, acknowledge QoS 1 deliveries."""
        try:
            while True:
                first, body = await P.read_packet_async(self.reader)
                if first == 0xD0:
                    self.pingresps += 1
                elif first >> 4 == 3:
                    _, packet_id, payload = P.publish_fields(first, body)
                    if packet_id:
                        self.writer.write(P.ack(4, packet_id))
                    self.messages.append(payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            return


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def scenario(port: int) -> None:
    clients = [ScaleClient(i) for i in range(CLIENTS)]
    gate = asyncio.Semaphore(100)

    async def open_one(client):
        async with gate:
            await asyncio.wait_for(client.open(port), 20)
        # Each client reads and pings from the moment it is connected: opening all 1,000
        # may take longer than 1.5x the keepalive on a busy machine.
        return asyncio.ensure_future(client.serve()), asyncio.ensure_future(client.ping())

    tasks = await asyncio.gather(*(open_one(c) for c in clients))
    servers = [server for server, _ in tasks]
    pingers = [pinger for _, pinger in tasks]

    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", port)
    silent_writer.write(P.connect("scale-silent", keepalive=1))
    assert await P.read_packet_async(silent_reader) == (0x20, b"\x00\x00")
    silent_since = time.monotonic()

    # Well past 1.5x the keepalive, with every client answered at least 3 times: all stay connected.
    def pinged_long_enough() -> bool:
        dropped = [c.client_id for c, s in zip(clients, servers) if s.done()]
        assert not dropped, f"pinging clients were disconnected: {dropped[:5]}"
        return all(c.pingresps >= 3 for c in clients) and time.monotonic() - silent_since > 2 * KEEPALIVE

    await wait_until(pinged_long_enough, 30, "3 PINGRESPs for every client")

    # The silent client (keepalive 1 s) has been cut off; the pinging ones have not.
    assert await asyncio.wait_for(silent_reader.read(), 5) == b"", "the silent client was not disconnected"
    silent_writer.close()
    assert not any(s.done() for s in servers), "a pinging client was disconnected"

    pub_reader, pub_writer = await asyncio.open_connection("127.0.0.1", port)
    pub_writer.write(P.connect("scale-publisher") + P.publish("scale/all", b"to-everyone", qos=1, packet_id=9))
    assert await P.read_packet_async(pub_reader) == (0x20, b"\x00\x00")
    assert await P.read_packet_async(pub_reader) == (0x40, b"\x00\x09")
    await wait_until(lambda: all(c.messages == [b"to-everyone"] for c in clients), 20,
                     "the fan-out to reach all 1,000 clients")

    for pinger in pingers:
        pinger.cancel()
    for c in clients:
        c.writer.write(P.DISCONNECT)
    pub_writer.write(P.DISCONNECT)
    await asyncio.wait_for(asyncio.gather(*servers), 20)
    for c in clients:
        c.writer.close()
    pub_writer.close()


def test_thousand_clients_with_keepalive_and_fan_out(luxnode_broker):
    broker = luxnode_broker("allow_anonymous true\n")
    asyncio.run(asyncio.wait_for(scenario(broker.port), 60))
    assert broker.alive()
