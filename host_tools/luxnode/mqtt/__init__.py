"""A sans-IO MQTT 3.1.1 / 3.1 codec: bytes in, packets out, and back.

``Decoder`` turns a byte stream into packet objects (``packets``), the
``encoder`` functions turn fields into bytes and ``topics`` checks and matches
topic names and filters. Nothing here touches a socket.
"""

from . import encoder, packets, topics
from .decoder import Decoder
from .packets import ProtocolError

__all__ = ["Decoder", "ProtocolError", "encoder", "packets", "topics"]
