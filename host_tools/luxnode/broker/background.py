"""A broker on its own event loop in a background thread (tests, benchmarks)."""

import asyncio
import threading

from .server import Server


class BackgroundBroker:
    """``start()`` returns once every listener is bound; ``ports`` lists them in order."""

    def __init__(self, config, **server_options):
        self.config = config
        self._options = server_options
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def ports(self) -> list[int]:
        return self.server.ports

    @property
    def broker(self):
        return self.server.broker

    def start(self) -> "BackgroundBroker":
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        failure = []

        async def boot():
            self.server = Server(self.config, **self._options)
            await self.server.start()

        def run():
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(boot())
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="luxnode-broker", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self.loop.close()
            raise failure[0]
        return self

    def call(self, function, *args):
        """Run ``function(*args)`` on the broker's loop and return its result."""
        async def run():
            return function(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        self._thread = None

    def __enter__(self) -> "BackgroundBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
