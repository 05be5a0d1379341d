"""Build step that puts the firmware and board files into the wheel as package data.

They stay at the top of the repository (firmware/, boards/), where flash.sh and
people find them; a non-editable install gets copies at luxnode/firmware and
luxnode/boards (luxnode.paths looks there first). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_FOLDERS = ("firmware", "boards")


class BuildWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return   # an editable install reads the repository's folders
        for name in DATA_FOLDERS:
            target = Path(self.build_lib) / "luxnode" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy"))


setup(cmdclass={"build_py": BuildWithData})
