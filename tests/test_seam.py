"""Every public path into a Numba kernel, fed crafted arrays, gives a clear error or the right answer.

The cases are in tests/hostile_arrays.py: 0-d arrays and numpy scalars, wrong dtypes, big-endian
byte order, odd strides, wrong shapes, read-only arrays, arrays that view each other, optimizer
state replaced behind the checks, and arrays the buffer cache once handed out and their holder
changed in place. They run in a child process (restarted after a crash), so a kernel that wrote
outside its memory fails one case here instead of killing the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_arrays import CASES

HERE = Path(__file__).resolve().parent

# what each case must give: the right answer ("ok"), or an error of this type whose message names this
EXPECTED = {
    "layer_norm_of_big_endian_data": "ok",
    "layer_norm_of_non_contiguous_data": "ok",
    "layer_norm_of_negative_strides": "ok",
    "layer_norm_of_read_only_data": "ok",
    "layer_norm_of_float16_data": ("TypeError", "layer_norm"),
    "layer_norm_of_a_numpy_scalar": ("ValueError", "layer_norm"),
    "layer_norm_of_complex_data": ("TypeError", "layer_norm"),
    "layer_norm_with_a_weight_of_the_wrong_shape_behind_the_checks": ("ValueError", "weight"),
    "layer_norm_gradient_of_the_wrong_shape": ("ValueError", "reshape"),  # a node's backward called by hand
    "dropout_of_big_endian_strided_data": "ok",
    "dropout_of_an_int_tensor_behind_the_checks": ("TypeError", "dropout"),
    "embedding_with_big_endian_uint_indices": "ok",
    "embedding_with_an_index_of_two_to_the_64_minus_one": ("IndexError", "18446744073709551615"),
    "embedding_with_a_float_index": ("TypeError", "embedding"),
    "embedding_backward_with_indices_changed_after_forward": "ok",
    "embedding_weight_replaced_by_a_vector": ("ValueError", "embedding"),
    "cross_entropy_with_targets_changed_after_forward": "ok",
    "cross_entropy_of_non_contiguous_big_endian_logits": "ok",
    "cross_entropy_of_a_numpy_scalar_target": ("ValueError", "cross_entropy"),
    "nll_loss_of_int_scores": ("TypeError", "nll_loss"),
    "rnn_with_big_endian_non_contiguous_weights": "ok",
    "rnn_with_a_recurrent_weight_of_the_wrong_shape": ("ValueError", "rnn"),
    "rnn_with_an_initial_state_of_the_wrong_shape_behind_the_checks": ("ValueError", "RNN: expected hidden size"),
    "rnn_with_int_input_behind_the_checks": "ok",
    "adam_state_replaced_by_numpy_scalars": ("TypeError", "exp_avg"),
    "adam_state_of_the_wrong_shape": ("ValueError", "exp_avg"),
    "adam_state_read_only": ("ValueError", "exp_avg"),
    "adam_state_big_endian": ("ValueError", "exp_avg_sq"),
    "adam_state_non_contiguous": ("ValueError", "exp_avg"),
    "adam_state_aliasing_the_parameter": ("ValueError", "share memory"),
    "adam_state_aliasing_each_other": ("ValueError", "share memory"),
    "adam_gradient_of_the_wrong_shape": ("ValueError", "gradient"),
    "adam_parameter_replaced_by_a_0d_array": ("ValueError", "exp_avg"),
    "adam_parameter_non_contiguous_gets_the_right_update": "ok",
    "seam_layer_norm_of_a_list": ("TypeError", "layer_norm"),
    "seam_layer_norm_of_a_vector": ("ValueError", "2-d"),
    "seam_scatter_add_with_an_out_of_range_index": ("IndexError", "indices"),
    "seam_cross_entropy_backward_with_a_negative_target": ("IndexError", "target"),
    "seam_rnn_backward_with_a_short_gradient": ("ValueError", "grad"),
    "seam_dropout_with_a_short_mask": ("ValueError", "mask"),
    "a_dropout_result_retyped_by_its_holder": "ok",
    "a_layer_norm_result_reshaped_by_its_holder": "ok",
    "a_layer_norm_result_made_read_only_by_its_holder": "ok",
}


def run_cases(names: list[str]) -> dict[str, dict]:
    """Run the cases in a child process; after a crash, the case it died in is recorded and a new child
    runs the rest."""
    paths = [str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    results: dict[str, dict] = {}
    remaining = list(names)
    while remaining:
        child = subprocess.run([sys.executable, str(HERE / "hostile_arrays.py"), *remaining], capture_output=True,
                               text=True, env=env, timeout=600)
        for line in child.stdout.splitlines():
            if line.startswith("{"):
                outcome = json.loads(line)
                results[outcome["case"]] = outcome
        remaining = [name for name in remaining if name not in results]
        if remaining:  # the child died inside remaining[0]
            results[remaining[0]] = {"case": remaining[0], "outcome": "crash", "returncode": child.returncode,
                                     "stderr": child.stderr[-2000:]}
            remaining = remaining[1:]
    return results


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict]:
    return run_cases(list(CASES))


def test_every_case_has_an_expectation():
    assert sorted(CASES) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_crafted_array_gives_a_clear_error_or_the_right_answer(name, outcomes):
    outcome = outcomes[name]
    expected = EXPECTED[name]
    assert outcome["outcome"] != "crash", f"{name} crashed the process: {outcome}"
    if expected == "ok":
        assert outcome["outcome"] == "ok", outcome
        return
    error_type, mentioned = expected
    assert outcome["outcome"] == "error", f"{name}: expected {error_type}, got {outcome}"
    assert outcome["type"] == error_type and mentioned in outcome["message"], outcome
    assert "numba" not in outcome["raised_in"].lower(), f"a raw Numba error escaped: {outcome}"
    assert "\n" not in outcome["message"], "one line, please"


def test_the_runner_reports_a_crash_as_a_failed_case_and_runs_the_rest():
    results = run_cases(["seam_dropout_with_a_short_mask", "abort", "seam_layer_norm_of_a_list"])
    assert results["abort"]["outcome"] == "crash" and results["abort"]["returncode"] != 0
    assert results["seam_dropout_with_a_short_mask"]["outcome"] == "error"
    assert results["seam_layer_norm_of_a_list"]["outcome"] == "error"
