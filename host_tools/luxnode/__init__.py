"""luxnode: host tools for MicroPython light nodes."""

__version__ = "0.1.0"
