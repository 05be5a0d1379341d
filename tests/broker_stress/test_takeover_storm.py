"""Fifty connections race for one client id: each new CONNECT takes the session over, so in
the end exactly one is connected, it still works, and each loser got its CONNACK and then
a closed connection (MQTT-3.1.4-2), with its will published."""

import asyncio

from . import packets as P

RACERS = 50


async def storm(port: int) -> None:
    watcher_reader, watcher_writer = await asyncio.open_connection("127.0.0.1", port)
    watcher_writer.write(P.connect("storm-watcher") + P.subscribe([("storm/#", 0)]))
    assert (await P.read_packet_async(watcher_reader))[0] == 0x20
    assert (await P.read_packet_async(watcher_reader))[0] == 0x90

    async def racer(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(P.connect("contested", will=("storm/will", b"lost-%d" % n, 0, False)))
        assert await asyncio.wait_for(P.read_packet_async(reader), 20) == (0x20, b"\x00\x00")
        return n, reader, writer

    racers = await asyncio.gather(*(racer(n) for n in range(RACERS)))

    async def still_open(reader) -> bool:
        try:
            return await asyncio.wait_for(reader.read(1), 0.5) != b""
        except asyncio.TimeoutError:
            return True  # nothing to read and not closed

    # Wait (bounded) until the takeovers settle: every loser sees EOF.
    for _ in range(40):
        open_ones = [n for (n, reader, _), alive in
                     zip(racers, await asyncio.gather(*(still_open(r) for _, r, _ in racers))) if alive]
        if len(open_ones) == 1:
            break
    assert len(open_ones) == 1, f"{len(open_ones)} connections hold client id 'contested'"
    winner = next(w for n, _, w in racers if n == open_ones[0])
    winner.write(P.publish("storm/winner", b"still-works"))

    wills, delivered = set(), None
    while delivered is None:
        topic, _, payload = P.publish_fields(*await asyncio.wait_for(P.read_packet_async(watcher_reader), 10))
        if topic == "storm/will":
            wills.add(payload)
        elif topic == "storm/winner":
            delivered = payload
    assert delivered == b"still-works"
    # A taken-over connection publishes its will (mosquitto does too): every loser's arrived.
    assert wills == {b"lost-%d" % n for n in range(RACERS) if n != open_ones[0]}
    for _, _, writer in racers:
        writer.close()
    watcher_writer.close()


def test_fifty_connections_race_for_one_client_id(luxnode_broker):
    broker = luxnode_broker("allow_anonymous true\n")
    asyncio.run(asyncio.wait_for(storm(broker.port), 60))
    assert broker.alive()
