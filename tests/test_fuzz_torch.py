"""Differential fuzzing against PyTorch: random programs of the public ops, values and every gradient.

The programs come from ``fuzz_programs.programs()`` (see that module for what they contain and how
values are compared). The default run is bounded so the whole suite stays fast, and is
derandomized (the same programs every run). A longer hunt::

    TINYGRAD_LN_FUZZ_EXAMPLES=20000 TINYGRAD_LN_FUZZ_SEED=1 pytest tests/test_fuzz_torch.py

A failure prints the shrunk program as a script to paste (``program.script()``); a real bug found
this way becomes a named test in test_fuzz_regressions.py.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch", reason="the differential fuzzer compares with PyTorch, which is not installed")

import fuzz_programs  # noqa: E402
from fuzz_programs import compare, programs  # noqa: E402
from hypothesis import HealthCheck, given, note, seed, settings  # noqa: E402

EXAMPLES = int(os.environ.get("TINYGRAD_LN_FUZZ_EXAMPLES", "600"))
SEED = os.environ.get("TINYGRAD_LN_FUZZ_SEED")

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    print_blob=SEED is not None,
)


def _seeded(test):
    return seed(int(SEED))(test) if SEED is not None else test


@_seeded
@fuzz_settings
@given(program=programs())
def test_random_programs_match_torch(program):
    note("Reproduce with:\n\n" + program.script() + "\n")
    compare(program)


def test_every_api_op_is_fuzzed():
    """The ops of the new API (issue 11) join the fuzzer as they land; this lists the ones still missing."""
    missing = [name for name, present in fuzz_programs.HAS.items() if not present]
    if missing:
        pytest.skip(f"not in tinygrad_ln yet, so not fuzzed: {', '.join(missing)}")
