"""The lab broker: MQTT 3.1.1/3.1 over TCP, TLS and WebSocket, mosquitto.conf compatible.

``core`` is the protocol logic (no sockets), ``server`` puts listeners, TLS,
timers and sqlite persistence around it, ``command`` is ``luxnode broker``.
To run one inside a test or a benchmark::

    from luxnode.broker.background import BackgroundBroker
    with BackgroundBroker(config) as broker:   # listeners with port 0 get a free port
        broker.ports[0]
"""
