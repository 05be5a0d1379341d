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
    # As wheels: a dependency published only as an sdist (esptool) is built once, here.
    tools.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", wheelhouse, "--find-links", wheelhouse, wheel],
              env=env, cwd=root)
    return source, wheelhouse


@pytest.fixture(scope="session")
def venvs(built, tmp_path_factory):
    """venvs(python) -> a venv of that interpreter with the built wheel installed, made once per session."""
    made = {}

    def venv_for(python: str, offline: bool = True):
        if python not in made:
            root = tmp_path_factory.mktemp("venv")
            env = tools.clean_env(root)
            folder = tools.make_venv(python, root / "venv", env)
            # Offline where the wheelhouse has it all (3.11); else only the rest comes from the index.
            tools.pip_install(folder, built[1], "luxnode", env=env, offline=offline)
            made[python] = folder
        return made[python]
    return venv_for
