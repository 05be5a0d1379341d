"""What a connected board runs and holds, asked in one raw-REPL round trip."""

from luxnode.errors import LuxnodeError

MANIFEST = ".luxnode-files"  # one deployed path per line, for removing stale files later

# Runs on the board: small, no large strings, works on an ESP8266 and the unix port, and in
# MicroPython 1.16's syntax (before 1.20 the .mpy version is sys.implementation.mpy, there is
# no _machine).
_QUERY = """
import sys, os, json
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
_buf = bytearray(256)
def _hash(p):
    if hashlib is None:
        return None
    h = hashlib.sha256()
    mv = memoryview(_buf)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(_buf)
            if not n:
                break
            h.update(mv[:n])
    return binascii.hexlify(h.digest()).decode()
def _add(p):
    try:
        _files[p] = _hash(p)
    except OSError:
        pass
def _walk(d):
    for e in os.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            _walk(p)
        else:
            _add(p)
def _field(p, key):
    try:
        with open(p) as f:
            return json.load(f).get(key)
    except Exception:
        return None
def _tls():
    try:
        return (_field('config.json', 'mqtt').get('tls') or {}).get('mode')
    except Exception:
        return None
_files = {}
for _n in TOP_FILES:
    _add(_n)
for _d in TOP_DIRS:
    try:
        _walk(_d)
    except OSError:
        pass
_manifest = []
try:
    with open(MANIFEST) as f:
        _manifest = [l.strip() for l in f if l.strip()]
except OSError:
    pass
for _n in _manifest:
    if _n not in _files:
        _add(_n)
_impl = sys.implementation
print(json.dumps({'version': list(_impl.version[:3]),
    'mpy': getattr(_impl, '_mpy', getattr(_impl, 'mpy', None)), 'platform': sys.platform,
    'machine': getattr(_impl, '_machine', None) or os.uname().machine, 'board': _field('board.json', 'name'),
    'files': _files, 'manifest': _manifest, 'hashlib': hashlib is not None,
    'device_id': _field('config.json', 'device_id'), 'tls': _tls()}))
"""


def query(link, top_files=(), top_dirs=()) -> dict:
    code = (f"TOP_FILES = {list(top_files)!r}\nTOP_DIRS = {list(top_dirs)!r}\n"
            f"MANIFEST = {MANIFEST!r}\n" + _QUERY)
    return link.exec_json(code)


def version_text(info: dict) -> str:
    return ".".join(str(n) for n in info["version"])


def guess_board(info: dict) -> str:
    """The board file that fits the MicroPython port and machine the board reports."""
    platform, machine = info["platform"], info.get("machine", "").upper().replace("-", "")
    if platform == "esp8266":
        return "esp8266"
    if platform == "esp32":
        for name in ("esp32s3", "esp32c3"):
            if name.upper() in machine:
                return name
        return "esp32"
    if platform in ("linux", "darwin"):
        return "sim"
    raise LuxnodeError(f"unsupported MicroPython port {platform!r} ({info.get('machine')}); luxnode supports ESP32 and ESP8266")


def choose_board(info: dict, requested: str | None) -> str:
    """--board if its chip is the connected one, else the board's own board.json, else a guess."""
    from luxnode import boards

    detected = guess_board(info)
    own = info.get("board")
    if detected == "sim" and own in boards.names() and requested in (None, own):
        return own  # the unix port simulating a chip (luxnode sim --faithful): its board.json names it
    chip = boards.load(detected)["chip"]
    if requested:
        if boards.load(requested)["chip"] != chip:
            raise LuxnodeError(
                f"board file {requested!r} is for {boards.load(requested)['chip']}, but the connected "
                f"board is {info.get('machine') or info['platform']}: use --board {detected}"
            )
        return requested
    if own and own in boards.names() and boards.load(own)["chip"] == chip:
        return own
    return detected
