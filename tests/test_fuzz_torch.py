"""Differential fuzzing against PyTorch: random programs of the public ops, values and every gradient.

The programs come from ``fuzz_programs.programs()`` (see that module for what they contain and how
values are compared). The default run is bounded so the whole suite stays fast, and is
derandomized (the same programs every run). A longer hunt with a seed of your choice::

    TINYGRAD_LN_FUZZ_EXAMPLES=20000 TINYGRAD_LN_FUZZ_SEED=1 pytest tests/test_fuzz_torch.py

A failure prints the program, shrunk by Hypothesis and then by ``fuzz_programs.minimize``, as a
script to paste; a real bug found this way becomes a named test in test_fuzz_regressions.py.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch", reason="the differential fuzzer compares with PyTorch, which is not installed")

import fuzz_programs  # noqa: E402
from fuzz_programs import Mismatch, compare, minimize, programs  # noqa: E402
from hypothesis import HealthCheck, given, note, seed, settings  # noqa: E402

EXAMPLES = int(os.environ.get("TINYGRAD_LN_FUZZ_EXAMPLES", "3000"))
SEED = os.environ.get("TINYGRAD_LN_FUZZ_SEED")

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,  # a seed only counts without derandomize
    # a program draws many choices; Hypothesis marks the biggest "invalid" and starts again, which is fine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _seeded(test):
    return seed(int(SEED))(test) if SEED is not None else test


def _is_final_run() -> bool:
    """True when Hypothesis replays the shrunk failing example to report it (only then is minimising worth it)."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - an internal of Hypothesis; without it the report is just less small
        return False


@_seeded
@fuzz_settings
@given(program=programs())
def test_random_programs_match_torch(program):
    try:
        compare(program)
    except Mismatch:
        if not _is_final_run():
            raise
        small = minimize(program)
        note(f"Hypothesis's shrunk program: {program!r}")
        try:
            compare(small)
        except Mismatch as error:
            raise Mismatch(f"{error}\n\nReproduce with:\n\n{small.script()}\n") from None
        raise


def test_no_known_bug_is_being_avoided():
    """While a bug of fuzz_programs.KNOWN_BUGS is present the fuzzer steers around it; this names them."""
    present = [f"{name} ({bug.regression_test})" for name, bug in fuzz_programs.KNOWN_BUGS.items() if bug.present]
    if present:
        pytest.skip(f"the fuzzer avoids these known bugs until they are fixed: {'; '.join(present)}")
