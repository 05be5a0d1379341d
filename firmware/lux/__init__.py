# luxnode firmware. Modules needed only now and then are imported on demand and
# unloaded with forget() once done, to keep their code off the heap.
import sys


def forget(name):
    """Unload lux.<name>. Its dict is emptied too: the GC scans the stack
    conservatively, and a stale pointer to the module object must not keep
    everything the module refers to."""
    mod = sys.modules.pop("lux." + name, None)
    pkg = sys.modules.get("lux")
    if pkg and hasattr(pkg, name):
        delattr(pkg, name)
    if mod:
        mod.__dict__.clear()
