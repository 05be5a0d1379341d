import sys

import pytest

from tests.install import tools


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(source copy, wheelhouse): the wheel built once from a copy of the checkout, and everything
    a Python 3.11 install needs beside it (pip, setuptools and pipx too)."""
    root = tmp_path_factory.mktemp("install")
    source = tools.source_copy(root / "luxnode")
    wheelhouse = root / "wheelhouse"
    env = tools.clean_env(root)
    tools.run([sys.executable, "-m", "pip", "download", "-q", "-d", wheelhouse, "setuptools>=77", "wheel", "pip",
               "pipx"], env=env, cwd=root)
    tools.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "--find-links", wheelhouse,
               "-w", wheelhouse, source], env=env, cwd=root)
    [wheel] = wheelhouse.glob("luxnode-*.whl")
    tools.run([sys.executable, "-m", "pip", "download", "-q", "-d", wheelhouse, "--find-links", wheelhouse, wheel],
              env=env, cwd=root)
    return source, wheelhouse
