# Starts the light node unless its MicroPython is too old for it or boot.py chose safe mode.
import sys

too_old = None
if sys.implementation.version[:2] < (1, 29):  # needs.NEWEST, as in boot.py
    import needs

    too_old = needs.problem()
if too_old:
    print(too_old)  # one line, then the REPL: no lux module is loaded
else:
    import lux.safemode

    if not lux.safemode.checked:
        lux.safemode.check()
    if lux.safemode.active:
        print("luxnode: safe mode (%s): application skipped; fix config.json and reset"
              % lux.safemode.reason)
    else:
        import lux.start

        lux.start.start().run()  # run() from here: nothing holds lux.start while the node runs
