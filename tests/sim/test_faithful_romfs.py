"""The board-faithful build's ROMFS partition, as the ESP8266 FLASH_2M_ROMFS build's
vfs.rom_ioctl behaves (ports/esp8266/vfs_rom_ioctl.c): flash erased by sectors, programmed
like NOR flash, mapped read-only outside the GC heap, mounted at /rom at start."""

import pytest

from luxnode.sim import port
from tests.sim.faithful import chip_root, faithful_binary, run_chip


@pytest.fixture(autouse=True)
def built():
    faithful_binary("esp8266")


def test_esp8266_partition_erases_by_sector_and_programs_like_nor_flash(tmp_path):
    root = chip_root(tmp_path / "fs", "esp8266")
    partition = port.romfs_partition(root)
    assert partition.read_bytes() == b"\xff" * 327680  # erased flash
    out = run_chip(root, "import vfs\n"
                         "print(vfs.rom_ioctl(1), len(vfs.rom_ioctl(2, 0)))\n"
                         "print(vfs.rom_ioctl(4, 0, 0, b'\\x0f\\xf0'))\n"   # program without an erase
                         "print(vfs.rom_ioctl(4, 0, 0, b'\\xf0\\x0f'))\n"   # bits only go 1 -> 0
                         "print(bytes(vfs.rom_ioctl(2, 0)[:2]))\n"
                         "print(vfs.rom_ioctl(3, 0, 1))\n"                   # erases the whole first sector
                         "print(bytes(vfs.rom_ioctl(2, 0)[:2]))\n"
                         "print(vfs.rom_ioctl(4, 0, 327679, b'ab'), vfs.rom_ioctl(6, 0), vfs.rom_ioctl(5, 0))\n"
                         "try:\n vfs.rom_ioctl(2, 0)[0] = 0\nexcept TypeError:\n print('read-only')\n")
    assert out == ["1 327680", "0", "0", "b'\\x00\\x00'", "4", "b'\\xff\\xff'", "-22 -22 -22", "read-only"]


def test_a_romfs_image_in_the_partition_is_mounted_at_start_outside_the_heap(tmp_path):
    from luxnode.device import romfs

    root = chip_root(tmp_path / "fs", "esp8266")
    image = romfs.image({"lib/big.py": b"DATA = 1\n" + b"#" * 60000 + b"\n"})
    with open(port.romfs_partition(root), "r+b") as flash:
        flash.write(image)
    out = run_chip(root, "import os\nprint(os.listdir('/rom/lib'))\n"
                         "data = memoryview(open('/rom/lib/big.py', 'rb'))\nprint(len(data), bytes(data[-2:]))\n",
                   heap=38000)
    assert out == ["['big.py']", "60010 b'#\\n'"]  # 60 KB seen through a 38 KB heap: the mapping itself


def test_esp32_has_no_romfs_partition(tmp_path):
    root = chip_root(tmp_path / "fs", "esp32")
    assert port.romfs_partition(root) is None and not (root / ".romfs").exists()
    assert run_chip(root, "import vfs\nprint(vfs.rom_ioctl(1), vfs.rom_ioctl(2, 0))\n"
                          "import os\ntry:\n os.listdir('/rom')\nexcept OSError:\n print('no /rom')\n") == \
        ["0 -22", "no /rom"]
