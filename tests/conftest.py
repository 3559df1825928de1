"""Shared pytest setup: Hypothesis profiles, so every property test runs a modest, fixed set of examples.

The default profile is derandomized (the same examples every run, so CI is deterministic) and small
enough for the whole suite to stay fast. For a deeper hunt run with HYPOTHESIS_PROFILE=thorough.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
