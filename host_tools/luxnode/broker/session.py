"""What the broker keeps for one client id between connections."""

from collections import deque

# States of an outgoing in-flight message.
AWAIT_ACK = 0      # PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
AWAIT_COMP = 1     # PUBREL sent, waiting for PUBCOMP


_NO_IDS = frozenset()
# The owner of a session restored from a file saved before owners were kept: the
# first identity to resume it claims it.
UNCLAIMED = object()


class Session:
    __slots__ = ("client_id", "persistent", "subscriptions", "queue", "inflight", "incoming",
                 "next_packet_id", "client", "dropped", "owner", "queued_bytes")

    def __init__(self, client_id: str, persistent: bool):
        self.client_id = client_id
        self.persistent = persistent
        self.subscriptions: dict[str, int] = {}
        # (topic, payload, qos, retain) not yet sent; a deque once there is one
        # (an empty deque costs ~600 bytes, times every idle connection).
        self.queue: deque | tuple = ()
        # packet id -> [state, topic, payload, qos, retain], in send order.
        self.inflight: dict[int, list] = {}
        # QoS 2 packet ids received and delivered, awaiting PUBREL (a set once there is one).
        self.incoming: set[int] | frozenset = _NO_IDS
        self.next_packet_id = 1
        self.client = None
        self.dropped = 0
        # The username (None: anonymous) that made it; another one gets a fresh session.
        self.owner = UNCLAIMED
        self.queued_bytes = 0  # payload bytes in the queue (max_queued_bytes)

    def owned_by(self, username: str | None) -> bool:
        return self.owner is UNCLAIMED or self.owner == username

    def enqueue(self, message: tuple) -> None:
        self.queued_bytes += len(message[1])
        if self.queue:
            self.queue.append(message)
        else:
            self.queue = deque((message,))

    def dequeue(self) -> tuple:
        message = self.queue.popleft()
        self.queued_bytes -= len(message[1])
        return message

    def remember_incoming(self, packet_id: int) -> None:
        if self.incoming:
            self.incoming.add(packet_id)
        else:
            self.incoming = {packet_id}

    def allocate_packet_id(self) -> int:
        packet_id = self.next_packet_id
        while packet_id in self.inflight:
            packet_id = packet_id % 65535 + 1
        self.next_packet_id = packet_id % 65535 + 1
        return packet_id
