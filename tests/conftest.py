import shutil
import signal

import pytest

from tests.support.mosquitto import Mosquitto


def pytest_configure(config):
    # A shell starts background jobs (`pytest &`, some CI runners) with SIGINT ignored, and an
    # ignored signal stays ignored across exec: every `luxnode` the tests start would then
    # ignore the Ctrl-C the tests send it. A handler here is reset to the default in children.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_luxnode_home(tmp_path_factory, monkeypatch):
    """Every test (and every process it starts) keeps lab state in its own folder, never ~/.luxnode.
    Beside tmp_path, not in it, so tests that list tmp_path see only their own files."""
    home = tmp_path_factory.mktemp("luxnode-home")
    monkeypatch.setenv("LUXNODE_HOME", str(home))
    # Scratch folders of the processes a test starts (a simulated node killed outright
    # cannot remove its own) stay under pytest's temporary folder too, not in /tmp.
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("tmp")))
    return home


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
