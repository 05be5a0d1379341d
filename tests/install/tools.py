"""Installs of luxnode as users make them: a wheel built once, fresh venvs, pipx, other Pythons.

Everything the installs need is downloaded once into a wheelhouse; each install then
runs with ``--no-index --find-links`` (pip's ``PIP_NO_INDEX``/``PIP_FIND_LINKS`` for
pipx), so a test costs a venv and an unzip, not a trip to the index.
"""

import glob
import os
import shutil
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

from luxnode.paths import REPO
from tests.support.net import free_port, wait_for

# What a user's shell has without any venv, pyenv shim or checkout on it.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SKIPPED_IN_COPY = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                         ".pytest_cache", ".hypothesis", "test-artifacts", ".venv")


def run(argv, *, env, cwd, timeout=300, check=True):
    result = subprocess.run([str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def clean_env(home: Path, **extra) -> dict:
    """A login-like environment: no PYTHONPATH, no venv, no pyenv, its own HOME and LUXNODE_HOME."""
    env = {"PATH": SYSTEM_PATH, "HOME": str(home), "LUXNODE_HOME": str(home / "lab"), "LANG": "C.UTF-8",
           "TMPDIR": os.environ.get("TMPDIR", "/tmp"), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra)
    return env


def source_copy(dest: Path) -> Path:
    """The checkout as a user clones it (building in it would leave build/ in the real one)."""
    return Path(shutil.copytree(REPO, dest, ignore=SKIPPED_IN_COPY))


def interpreter(version: str) -> str | None:
    """A CPython ``version`` ("3.12"): on PATH, or one of pyenv's versions."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted(glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / f"python{version}")))
    found = shutil.which(f"python{version}", path=SYSTEM_PATH)
    for path in ([found] if found else []) + candidates[::-1]:
        probe = subprocess.run([path, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return path
    return None


def make_venv(python: str, folder: Path, env: dict) -> Path:
    run([python, "-m", "venv", folder], env=env, cwd=folder.parent)
    return folder


def pip_install(venv: Path, wheelhouse: Path, *packages, env: dict, offline=True):
    where = ["--no-index"] if offline else []
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", *where, "--find-links", wheelhouse, *packages],
        env=env, cwd=venv.parent)


class LabProcess:
    """``luxnode lab`` with one node on ephemeral ports, started as ``argv`` (however it was installed)."""

    def __init__(self, argv, *, env, cwd):
        self.ports = [free_port() for _ in range(4)]
        port, psk, ws, http = self.ports
        self.http_port = http
        self.proc = subprocess.Popen(
            [*map(str, argv), "lab", "--no-browser", "--nodes", "1", "--port", str(port), "--psk-port", str(psk),
             "--ws-port", str(ws), "--http-port", str(http)],
            env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        self.lines = []
        threading.Thread(target=lambda: self.lines.extend(line.rstrip("\n") for line in self.proc.stdout),
                         daemon=True).start()

    def wait_line(self, text, timeout=90):
        def seen():
            if any(text in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"luxnode lab exited {self.proc.returncode}:\n" + "\n".join(self.lines))
            return False
        wait_for(seen, timeout, what=f"{text!r} from luxnode lab:\n" + "\n".join(self.lines))

    def dashboard_page(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/", timeout=10) as page:
            return page.read().decode()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                return self.proc.wait(40)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        return self.proc.returncode


def lab_comes_up(argv, *, env, cwd):
    """The whole lab works: the node boots the packaged firmware, meets the broker, and the page is served."""
    lab = LabProcess(argv, env=env, cwd=cwd)
    try:
        lab.wait_line("1/1 nodes online")
        assert "luxnode lab" in lab.dashboard_page()
    finally:
        code = lab.stop()
    assert code == 0, "\n".join(lab.lines)
