# First file run at every boot: decide safe mode before main.py starts the node.
try:
    import lux.safemode

    lux.safemode.check()
except Exception as e:  # boot.py must never stop the board from reaching the REPL
    print("luxnode: boot check failed:", e)
