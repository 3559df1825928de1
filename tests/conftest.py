"""Shared pytest setup: Hypothesis profiles, the ``--fuzz`` option, and a fresh random generator per test.

The default Hypothesis profile is derandomized (the same examples every run, so CI is deterministic)
and small enough for the whole suite to stay fast. For a deeper hunt run with HYPOTHESIS_PROFILE=thorough.

``--fuzz=long`` runs the differential fuzzer (tests/test_fuzz_torch.py) on 3,000 programs instead of
the default 300; CI runs it (``make test-long``).

The ``rng`` fixture is a new ``np.random.default_rng(0)`` for each test, so a test's data never
depends on which tests ran before it. (Library draws, such as layer init and dropout masks, come
from the library's own generator: a test whose numbers depend on them calls ``tl.manual_seed``.)
"""

from __future__ import annotations

import os

import numpy as np
import pytest
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz",
        choices=("short", "long"),
        default="short",
        help="how many random programs tests/test_fuzz_torch.py compares with PyTorch: short (300, 5-10 s on "
        "2 cores; the default) or long (3,000, about 35-100 s on 2 cores; CI runs it)",
    )


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator of this test's own, always seeded 0: no draw depends on another test."""
    return np.random.default_rng(0)
