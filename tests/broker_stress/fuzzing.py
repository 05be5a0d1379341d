"""Hypothesis settings shared by the broker fuzz tests.

By default every run tries the same examples (derandomized), so the suite is deterministic
and a failure reproduces. For a longer, fresh hunt set LUXNODE_FUZZ=explore: random
examples, ten times as many."""

import os

from hypothesis import HealthCheck, settings

EXPLORE = os.environ.get("LUXNODE_FUZZ") == "explore"


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples * (10 if EXPLORE else 1),
        derandomize=not EXPLORE,
        deadline=None,
        # One broker per test function serves all its examples; each example is a network round trip.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
