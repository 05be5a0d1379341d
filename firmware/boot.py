# First file run at every boot: decide safe mode before main.py starts the node.
try:
    import sys

    # A MicroPython at least as new as the newest that needs.py asks for (NEWEST) fits any
    # setup: only an older one compiles needs.py (source, 2 KB) to find out. A 38 KB
    # ESP8266 heap has no room for that compile beside the node.
    if sys.implementation.version[:2] >= (1, 29):
        too_old = None
    else:
        import needs

        too_old = needs.problem()
    if not too_old:  # too old for lux/: main.py says so, once
        import lux.safemode

        lux.safemode.check()
except Exception as e:  # boot.py must never stop the board from reaching the REPL
    print("luxnode: boot check failed:", e)
