# Starts the light node unless boot.py chose safe mode.
import lux.safemode

if not lux.safemode.checked:
    lux.safemode.check()
if lux.safemode.active:
    print("luxnode: safe mode (%s): application skipped; fix config.json and reset"
          % lux.safemode.reason)
else:
    import lux.start

    lux.start.start().run()  # run() from here: nothing holds lux.start while the node runs
