"""Every documented install path, on a clean environment, run from a folder that is not the checkout."""

import sys
from pathlib import Path

import pytest

from tests.install import tools

pytestmark = pytest.mark.skipif(sys.version_info[:2] != (3, 11) or sys.platform != "linux",
                                reason="the install paths with simulated nodes need CPython 3.11 on Linux "
                                       "(the MicroPython unix-port wheel exists only there)")


@pytest.fixture
def venv(venvs):
    """A fresh venv with the built wheel installed (not editable), from the wheelhouse only."""
    return venvs(sys.executable)


def elsewhere(tmp_path):
    folder = tmp_path / "somewhere-else"
    folder.mkdir()
    return folder


def test_the_wheel_carries_firmware_boards_and_dashboard(venv, tmp_path):
    code = ("import luxnode.paths as p, luxnode.lab.web as w; "
            "print(p.FIRMWARE_DIR); print(p.BOARDS_DIR); print(w.DASHBOARD_DIR)")
    out = tools.run([venv / "bin" / "python", "-c", code], env=tools.clean_env(tmp_path), cwd=elsewhere(tmp_path))
    site = str(venv / "lib")
    for line, inside in zip(out.stdout.split(), ("lux/node.py", "sim.json", "index.html")):
        assert line.startswith(site), out.stdout   # inside the install, not the checkout
        assert (Path(line) / inside).is_file(), line


def test_unactivated_venv_runs_the_lab_from_another_folder(venv, tmp_path):
    # venv/bin is not on PATH: the micropython script installed beside luxnode must be found anyway.
    tools.lab_comes_up([venv / "bin" / "luxnode"], env=tools.clean_env(tmp_path), cwd=elsewhere(tmp_path))


def test_activated_venv_runs_the_lab(venv, tmp_path):
    env = tools.clean_env(tmp_path, PATH=f"{venv / 'bin'}:{tools.SYSTEM_PATH}", VIRTUAL_ENV=str(venv))
    tools.lab_comes_up(["luxnode"], env=env, cwd=elsewhere(tmp_path))


def test_pipx_install_dot(built, tmp_path):
    source, wheelhouse = built
    env = tools.clean_env(tmp_path)
    tool = tools.make_venv(sys.executable, tmp_path / "pipx-venv", env)
    tools.pip_install(tool, wheelhouse, "pipx", env=env)
    pipx_env = tools.clean_env(tmp_path, PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"),
                               PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse))
    # As the README says, from the checkout: pipx runs pip with PYTHONSAFEPATH=1.
    tools.run([tool / "bin" / "pipx", "install", "."], env=pipx_env, cwd=source, timeout=600)
    tools.lab_comes_up([tmp_path / "bin" / "luxnode"], env=tools.clean_env(tmp_path), cwd=elsewhere(tmp_path))
