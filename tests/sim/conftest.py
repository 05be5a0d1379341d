"""Under LUXNODE_FAITHFUL=<chip> (the board-faithful 32-bit build): tests the current firmware
fails on that chip are expected to fail, strictly, naming the defect (see KNOWN in
tests/support/faithful_known.py); they must pass, and the entry go, once the firmware is fixed."""

from tests.support.faithful_known import mark_known_failures


def pytest_collection_modifyitems(config, items):
    mark_known_failures(items)
