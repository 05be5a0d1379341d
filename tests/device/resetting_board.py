"""A board whose soft reset reboots: the unix port on a pty, restarted the way a chip restarts.

The unix port ends on Ctrl-D where a board reboots. This relay keeps the port's
pty open across that: when MicroPython ends while the host had it in the raw
REPL, it prints "soft reboot" and starts MicroPython again in the raw REPL, as
a board does. A soft reset from the friendly REPL ends the relay (the board
would now run main.py). ampy soft-resets on every command, so it needs this.

    python -m tests.device.resetting_board ROOT TTY_LINK
"""

import os
import select
import subprocess
import sys
import tty


def spawn(root):
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(["micropython"], cwd=root, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    return proc, master


def main(root, link):
    port_master, port_slave = os.openpty()
    tty.setraw(port_slave)
    os.symlink(os.ttyname(port_slave), link + ".new")
    os.replace(link + ".new", link)
    raw_mode = False
    proc, child = spawn(root)
    while True:
        ready, _, _ = select.select([port_master, child], [], [], 0.05)
        if port_master in ready:
            data = os.read(port_master, 4096)
            for byte in data:
                if byte == 1:
                    raw_mode = True
                elif byte == 2:
                    raw_mode = False
            try:
                os.write(child, data)
            except OSError:
                pass  # MicroPython is ending; its pty is read to the end below
        if child in ready:
            try:
                out = os.read(child, 4096)
            except OSError:  # EIO: the unix port has ended and its pty is drained
                out = b""
            if out:
                os.write(port_master, out)
                continue
            proc.wait(timeout=5)
            os.close(child)
            if not raw_mode:
                break
            os.write(port_master, b"soft reboot\r\n")
            proc, child = spawn(root)
            os.write(child, b"\r\x01")  # a board stays in the raw REPL across a soft reset
    os.unlink(link)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
