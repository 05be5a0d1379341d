"""The serial-bootloader side of an ESP chip in download mode: detection and flash writes.

It speaks the ROM's SLIP-framed command protocol on a pty: SYNC, GET_SECURITY_INFO
(the chip id, on ESP32-S3/C3), READ_REG (the chip-detect magic and the UART clock
divider answer as on a chip, other registers 0); it takes the stub upload (MEM_*,
then the stub's "OHAI"), and as the stub: baud change, SPI attach, compressed flash
writes into a flash array, flash erase and the MD5 esptool verifies with. Anything
else is refused as the ROM refuses an unsupported command. esptool runs against it
unchanged. ``fail_above`` makes flash writes fail above that baud rate, like a USB
bridge that cannot keep up. A SYNC means esptool reset the chip into its ROM.
"""

import hashlib
import os
import select
import struct
import threading
import tty
import zlib

from esptool.targets import CHIP_DEFS

SYNC, READ_REG, GET_SECURITY_INFO, MAGIC_REG = 0x08, 0x0A, 0x14, 0x40001000
MEM_BEGIN, MEM_END, MEM_DATA, WRITE_REG = 0x05, 0x06, 0x07, 0x09
SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END, SPI_FLASH_MD5, ERASE_FLASH = 0x10, 0x11, 0x12, 0x13, 0xD0
ACCEPTED = {MEM_BEGIN, MEM_DATA, WRITE_REG, SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUDRATE, FLASH_DEFL_END}
ROM_BAUD = 115200
FLASH_SIZE = 4 << 20
MAGIC = {"ESP32": 0x00F01D83, "ESP8266": 0xFFF0C101}  # older ROMs: a magic register
CHIP_ID = {"ESP32-S3": 9, "ESP32-C3": 5}  # newer ROMs: the chip id in the security info
# The UART clock divider esptool derives the crystal from: a 40 MHz (ESP32) or 26 MHz crystal at 115200 baud.
UART_CLKDIV = {"ESP32": (0x3FF40014, 347), "ESP8266": (0x60000014, 451),
               "ESP32-S3": (0x60000014, 347), "ESP32-C3": (0x60000014, 347)}


def slip(packet: bytes) -> bytes:
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class EspRom:
    def __init__(self, chip: str, fail_above: int | None = None):
        self.flash = bytearray(b"\xff" * FLASH_SIZE)
        self.fail_above = fail_above
        self.baud = ROM_BAUD
        self.stub = False
        self._inflate, self._at = None, 0
        self.chip_id = CHIP_ID.get(chip)
        self.registers = {MAGIC_REG: MAGIC.get(chip, 0)}
        address, divider = UART_CLKDIV[chip]
        self.registers[address] = divider
        rom = CHIP_DEFS[chip.lower().replace("-", "")]
        # The SPI data register holds the JEDEC id after a read-id command: a 4 MB Winbond W25Q32.
        self.registers[rom.SPI_REG_BASE + rom.SPI_W0_OFFS] = 0x1640EF
        self.status_len = 2 if chip == "ESP8266" else 4  # ESP32 ROMs send 2 reserved bytes more
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _reply(self, op: int, value: int, ok: bool = True, data: bytes = b"") -> None:
        body = data + (b"\x00\x00" if ok else b"\x01\x05") + b"\x00" * (self.status_len - 2)
        os.write(self.master, slip(struct.pack("<BBHI", 1, op, len(body), value) + body))

    def _handle(self, frame: bytes) -> None:
        if len(frame) < 8 or frame[0] != 0:
            return
        op = frame[1]
        body = frame[8:]
        if op == SYNC:
            self.stub, self.baud = False, ROM_BAUD  # a reset into the ROM bootloader
            for _ in range(8):  # the ROM answers a SYNC several times
                self._reply(op, 0x20120707)
        elif op == MEM_END:
            self._reply(op, 0)
            self.stub = True  # the uploaded stub flasher starts and says hello
            os.write(self.master, slip(b"OHAI"))
        elif op == CHANGE_BAUDRATE:
            self.baud = struct.unpack("<I", body[:4])[0]
            self._reply(op, 0)
        elif op == FLASH_DEFL_BEGIN and self.stub:
            self._inflate, self._at = zlib.decompressobj(), struct.unpack("<IIII", body[:16])[3]
            self._reply(op, 0)
        elif op == FLASH_DEFL_DATA and self._inflate is not None:
            if self.fail_above and self.baud > self.fail_above:
                self._reply(op, 0, ok=False)
                return
            data = self._inflate.decompress(body[16:])
            self.flash[self._at:self._at + len(data)] = data
            self._at += len(data)
            self._reply(op, 0)
        elif op == SPI_FLASH_MD5 and self.stub:
            address, size = struct.unpack("<II", body[:8])
            self._reply(op, 0, data=hashlib.md5(self.flash[address:address + size]).digest())
        elif op == ERASE_FLASH and self.stub:
            self.flash[:] = b"\xff" * FLASH_SIZE
            self._reply(op, 0)
        elif op in ACCEPTED:
            self._reply(op, 0)
        elif op == GET_SECURITY_INFO and self.chip_id is not None:
            # flags, flash_crypt_cnt, 7 key purposes, chip id, api version: no security features on
            self._reply(op, 0, data=struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.chip_id, 0))
        elif op == READ_REG:
            (address,) = struct.unpack("<I", frame[8:12])
            self._reply(op, self.registers.get(address, 0))
        else:
            self._reply(op, 0, ok=False)

    def _serve(self) -> None:
        frame, escaped, inside = bytearray(), False, False
        while not self._stop.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for byte in data:
                if byte == 0xC0:
                    if inside and frame:
                        self._handle(bytes(frame))
                    frame, inside = bytearray(), True
                elif inside:
                    if escaped:
                        frame.append({0xDC: 0xC0, 0xDD: 0xDB}.get(byte, byte))
                        escaped = False
                    elif byte == 0xDB:
                        escaped = True
                    else:
                        frame.append(byte)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.slave)
        os.close(self.master)
