import shutil

import pytest

from tests.support.mosquitto import Mosquitto


@pytest.fixture
def mosquitto(tmp_path):
    """Start real mosquitto: ``mosquitto(extra_conf="...")`` returns a running Mosquitto."""
    if not shutil.which("mosquitto") and not shutil.which("/usr/sbin/mosquitto"):
        pytest.fail("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
    started = []

    def start(extra_conf: str = "", port: int | None = None) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto{len(started)}", extra_conf, port)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.stop()
