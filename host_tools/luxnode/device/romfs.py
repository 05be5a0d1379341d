"""``luxnode deploy --romfs``: the firmware's packages (lux/) in the board's ROMFS partition.

A ROMFS is a read-only filesystem in memory-mapped flash, mounted at /rom at start; .mpy
files there execute in place, so their bytecode costs no heap (what lets an ESP8266 run
the node with room). The image is built with mpremote's VfsRomWriter from the same .mpy
files a plain deploy copies, and written with MicroPython's ``vfs.rom_ioctl`` protocol
(prepare = erase, write, complete), the way ``mpremote romfs deploy`` does, over the
deploy's own raw-REPL link.
"""

import binascii
import hashlib

from luxnode.errors import LuxnodeError

CHUNK = 2048  # bytes per raw-REPL write: base64 of it and the decoded copy fit an ESP8266's heap
PREPARE = 32768  # bytes per erase call where the port erases by blocks (as mpremote)
_MOUNT = "/rom"

# Runs on the board: what ROMFS partition 0 is, and the SHA-256 of its first LEN bytes.
_QUERY = """
import json
try:
    import vfs
except ImportError:
    vfs = None
r = {'ioctl': hasattr(vfs, 'rom_ioctl'), 'segments': 0}
if r['ioctl']:
    r['segments'] = vfs.rom_ioctl(1)
if r['segments'] > 0:
    dev = vfs.rom_ioctl(2, 0)
    if isinstance(dev, int):
        r['segments'] = 0
    elif hasattr(dev, 'ioctl'):
        r['object'] = True
        r['block'] = dev.ioctl(5, 0)
        r['size'] = dev.ioctl(4, 0) * r['block']
    else:
        r['size'] = len(dev)
        r['block'] = vfs.rom_ioctl(6, 0)
    if r['segments'] > 0 and r['size'] >= LEN:
        try:
            import hashlib, binascii
            r['sha'] = binascii.hexlify(hashlib.sha256(memoryview(dev)[:LEN]).digest()).decode()
        except (ImportError, TypeError):
            pass
print(json.dumps(r))
"""


def split(files: dict[str, bytes], top_dirs: list[str]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(files for the ROMFS: those in the firmware's package folders, the rest for the filesystem)."""
    rom = {path: data for path, data in files.items() if path.split("/", 1)[0] in top_dirs and "/" in path}
    return rom, {path: data for path, data in files.items() if path not in rom}


def image(files: dict[str, bytes]) -> bytes:
    """A ROMFS image holding ``files`` (path -> content), directories as their paths say."""
    from mpremote.romfs import VfsRomWriter

    writer = VfsRomWriter()
    tree: dict = {}
    for path, data in files.items():
        *folders, name = path.split("/")
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = data

    def add(node: dict) -> None:
        for name in sorted(node):
            if isinstance(node[name], dict):
                writer.opendir(name)
                add(node[name])
                writer.closedir()
            else:
                writer.mkfile(name, node[name])

    add(tree)
    return writer.finalise()


def no_romfs_fix(board: dict) -> str:
    """What to flash for a ROMFS partition on this board's chip."""
    if board.get("chip") == "ESP8266":
        return ("flash MicroPython's ESP8266_GENERIC FLASH_2M_ROMFS firmware (2 MiB flash or more; "
                f"{board['micropython']['download']}), then deploy again")
    if board.get("chip") == "sim":
        return "the plain unix port has none: use the board-faithful build as an ESP8266 (luxnode sim --faithful)"
    build = (board.get("micropython") or {}).get("build") or "MicroPython"
    return (f"flash a {build} firmware built with a 'romfs' partition (the stock builds have none), "
            "or deploy without --romfs")


def query(link, length: int) -> dict:
    return link.exec_json(f"LEN = {length}\n" + _QUERY)


def check(found: dict, size: int, port: str, board: dict) -> None:
    """Refuse, naming the fix, when the board has no ROMFS partition or too small a one."""
    if not found["ioctl"] or found["segments"] <= 0:
        what = "has no ROMFS (no vfs.rom_ioctl)" if not found["ioctl"] else "has no ROMFS partition"
        raise LuxnodeError(f"{port}: the board's MicroPython {what}: {no_romfs_fix(board)}")
    if size > found["size"]:
        raise LuxnodeError(f"{port}: the firmware's ROMFS image is {size} bytes, the board's ROMFS partition "
                           f"only {found['size']}: {no_romfs_fix(board)}")


def write(link, data: bytes, found: dict, progress) -> None:
    """Erase what the image needs and write it in CHUNK-byte pieces, as mpremote's romfs deploy
    does; ``progress(done, total)`` after each piece. /rom is unmounted first (it is remounted at
    the next start)."""
    link.exec(f"import vfs\ntry:\n vfs.umount({_MOUNT!r})\nexcept OSError:\n pass\ndev = vfs.rom_ioctl(2, 0)")
    block = found["block"]
    if found.get("object"):  # a partition object (ESP32): erase block by block
        for offset in range(0, len(data), block):
            _expect_ok(link, f"dev.ioctl(6, {offset // block})", "erasing")
        write_at = "dev.writeblocks({offset} // {block}, buf, {offset} % {block})"
        chunk = min(CHUNK, block)
    else:
        if 0 < block < found["size"]:  # prepare in pieces of at most 32 KB, at block boundaries
            offset = 0
            while offset < len(data):
                prepared = (min(len(data) - offset, PREPARE) + block - 1) // block * block
                min_write = _int_answer(link.exec(f"print(vfs.rom_ioctl(3, 0, {offset}, {prepared}))"), "erasing")
                offset += prepared
        else:  # the ESP8266: one call erases the sectors the image needs
            min_write = _int_answer(link.exec(f"print(vfs.rom_ioctl(3, 0, {len(data)}))"), "erasing")
        write_at = "vfs.rom_ioctl(4, 0, {offset}, buf)"
        chunk = max(CHUNK // min_write * min_write, min_write)
    link.exec("from binascii import a2b_base64")
    offsets = list(range(0, len(data), chunk))
    for done, offset in enumerate(offsets[1:] + offsets[:1], 1):  # the header last: a cut write leaves no image
        piece = data[offset:offset + chunk]
        piece += bytes(-len(piece) % 4)  # whole flash words
        encoded = binascii.b2a_base64(piece, newline=False).decode()
        code = f"buf = a2b_base64({encoded!r})\nprint({write_at.format(offset=offset, block=block)})"
        result = link.exec(code).strip()
        if result not in (b"0", b"None"):
            raise LuxnodeError(f"writing the ROMFS at offset {offset} failed on the board: {result.decode()}")
        progress(min(done * chunk, len(data)), len(data))
    link.exec("vfs.rom_ioctl(5, 0)\ndel buf, dev")


def _int_answer(answer: bytes, what: str) -> int:
    try:
        value = int(answer.strip())
    except ValueError:
        value = -1
    if value <= 0:
        raise LuxnodeError(f"{what} the board's ROMFS partition failed: {answer.strip().decode(errors='replace')}")
    return value


def _expect_ok(link, code: str, what: str) -> None:
    answer = link.exec(f"print({code})").strip()
    if answer not in (b"0", b"None"):
        raise LuxnodeError(f"{what} the board's ROMFS partition failed: {answer.decode(errors='replace')}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
