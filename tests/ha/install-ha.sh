#!/usr/bin/env bash
# The Home Assistant core that tests/ha drives, in a venv of its own: DIR/venv/bin/python.
#   bash tests/ha/install-ha.sh DIR
# Home Assistant 2025.4.4 needs Python >= 3.13. Without a python3.13 ($PYTHON313, on PATH,
# or pyenv's), CPython 3.13 is built from Debian 13's source package into DIR/python
# (Debian 12 ships 3.11; no prebuilt 3.13 can be fetched).
set -euo pipefail
dir=$(mkdir -p "$1" && cd "$1" && pwd)
ha_version=2025.4.4

py=
pyenv_313=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 2>/dev/null | tail -1 || true)
for candidate in "${PYTHON313:-}" "$(command -v python3.13 || true)" "$pyenv_313" "$dir/python/bin/python3.13"; do
    # A pyenv shim is on PATH even where its version is not selected: try each one.
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info >= (3, 13)' 2>/dev/null; then
        py=$candidate
        break
    fi
done
if [ -z "$py" ]; then
    echo "install-ha: building CPython 3.13 from Debian's source package into $dir/python"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential libssl-dev zlib1g-dev libffi-dev \
        libsqlite3-dev libbz2-dev liblzma-dev uuid-dev xz-utils >/dev/null
    src=$dir/src
    mkdir -p "$src/lists/partial"
    # deb-src for trixie in a private apt state: the system's sources stay as they are.
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        >"$src/trixie-src.sources"
    apt_src=(-qq -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$src" -o Dir::State::Lists="$src/lists")
    apt-get "${apt_src[@]}" update
    (cd "$src" && apt-get "${apt_src[@]}" source --download-only python3.13 2>/dev/null)
    tarball=$(ls "$src"/python3.13_*.orig.tar.xz | head -1)
    rm -rf "$src/build" && mkdir "$src/build"
    tar -xJf "$tarball" -C "$src/build" --strip-components=1
    # COMPILEALL_OPTS -l: the install byte-compiles only the top of the standard library, at three
    # optimization levels; the rest compiles when first imported.
    (cd "$src/build" && ./configure -q --prefix="$dir/python" --disable-test-modules >/dev/null \
        && make -s -j"$(nproc)" >/dev/null 2>"$src/make.log" && make -s altinstall COMPILEALL_OPTS="-j0 -l" >/dev/null 2>&1)
    py=$dir/python/bin/python3.13
    "$py" -c "import ssl, sqlite3, ctypes, bz2, lzma, zlib, uuid"
fi

if ! "$dir/venv/bin/python" -c "import homeassistant.const as c; assert c.__version__ == '$ha_version'" 2>/dev/null; then
    "$py" -m venv --clear "$dir/venv"
    pip() {  # quiet, less the warnings of find-links folders some machines configure and lack
        "$dir/venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
            | { grep -v "^WARNING: Location '" || true; }
    }
    pip "homeassistant==$ha_version"
    constraints=$("$dir/venv/bin/python" -c 'import homeassistant, pathlib; print(pathlib.Path(homeassistant.__file__).with_name("package_constraints.txt"))')
    # What the MQTT integration and the frontend (onboarding) load, pinned as that release pins them.
    pip -c "$constraints" home-assistant-frontend==20250411.0 isal==1.7.1 paho-mqtt==2.1.0
fi
echo "install-ha: $("$dir/venv/bin/python" -c 'import sys, homeassistant.const as c; print("Home Assistant", c.__version__, "on Python", sys.version.split()[0])')"
