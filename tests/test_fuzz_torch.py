"""Differential fuzzing against PyTorch: random programs of the public ops, values and every gradient.

The programs come from ``fuzz_programs.programs()`` (see that module for what they contain and how
values are compared). Each run is derandomized (the same programs every run). How many programs:

    pytest tests/test_fuzz_torch.py                # 300 programs, 5-10 s on 2 cores (the default)
    pytest tests/test_fuzz_torch.py --fuzz=long    # 3,000 programs, about 35-100 s on 2 cores (CI)
    TINYGRAD_LN_FUZZ_EXAMPLES=20000 TINYGRAD_LN_FUZZ_SEED=1 pytest tests/test_fuzz_torch.py   # a hunt

A failure prints the program, shrunk by Hypothesis and then by ``fuzz_programs.minimize``, as a
script to paste (the shrinking makes a failing run longer: from seconds to about 5 minutes); a
real bug found this way becomes a named test in test_fuzz_regressions.py.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch", reason="the differential fuzzer compares with PyTorch, which is not installed")

from fuzz_programs import Mismatch, compare, minimize, programs  # noqa: E402
from hypothesis import HealthCheck, given, note, seed, settings  # noqa: E402

EXAMPLES = {"short": 300, "long": 3000}  # programs per run, chosen with --fuzz (tests/conftest.py)


def _is_final_run() -> bool:
    """True when Hypothesis replays the shrunk failing example to report it (only then is minimising worth it)."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - an internal of Hypothesis; without it the report is just less small
        return False


def check_program(program) -> None:
    """compare(program); on the final, shrunk failure, minimise it and show it as a script to paste."""
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


def test_random_programs_match_torch(pytestconfig):
    examples = int(os.environ.get("TINYGRAD_LN_FUZZ_EXAMPLES", EXAMPLES[pytestconfig.getoption("fuzz")]))
    chosen_seed = os.environ.get("TINYGRAD_LN_FUZZ_SEED")
    run = settings(
        max_examples=examples,
        deadline=None,
        derandomize=chosen_seed is None,  # a seed only counts without derandomize
        # a program draws many choices; Hypothesis marks the biggest "invalid" and starts again, which is fine
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )(given(program=programs())(check_program))
    if chosen_seed is not None:
        run = seed(int(chosen_seed))(run)
    run()
