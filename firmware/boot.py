# First file run at every boot: decide safe mode before main.py starts the node.
try:
    import needs

    if not needs.problem():  # too old for lux/: main.py says so, once
        import lux.safemode

        lux.safemode.check()
except Exception as e:  # boot.py must never stop the board from reaching the REPL
    print("luxnode: boot check failed:", e)
