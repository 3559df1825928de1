"""backend/jit.py, how the kernels are compiled and cached: with NUMBA_DISABLE_JIT=1 (kernels as plain
Python, the way a learner steps through them) a forward and backward gives the jitted numbers, and a
damaged file in the on-disk cache is replaced with one warning. Each test runs fresh interpreters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


# ---- the same numbers without the JIT -----------------------------------------------------------

# A small forward + backward touching every kernel: the fused embedding (scatter-add), dropout,
# layer norm, both recurrences, cross-entropy, and an Adam step.
SCRIPT = """
import json
import numpy as np
import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.backend import kernels
from tinygrad_ln.nn import functional as F

tl.manual_seed(0)
rng = np.random.default_rng(0)
x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
bias = Tensor(rng.standard_normal(3), requires_grad=True)
h = (x + bias).tanh()
rows = F.embedding(np.array([0, 2, 2, 3, 0]), h)
normalized = F.layer_norm(x.float() + 1e4, 3)  # float32 far from 0: accumulators matter
loss = F.dropout(rows, 0.3).sum() + (normalized * normalized * h.float()).sum().double()
for layer_norm in (False, True):
    rnn = nn.RNN(3, 5, layer_norm=layer_norm).double()
    out, _ = rnn(h.reshape(2, 2, 3))
    loss = loss + F.cross_entropy(out.reshape(4, 5), np.array([0, 4, 1, 1]))
loss.backward()
opt = optim.Adam([x, bias])
opt.step()
print(json.dumps({
    "jit": hasattr(kernels.adam_update, "py_func"),
    "loss": loss.item(),
    "x_grad": x.grad.data.tolist(),
    "bias_grad": bias.grad.data.tolist(),
    "x_after_adam": x.data.tolist(),
}))
"""


def _run(disable_jit: bool) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    if disable_jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_forward_and_backward_match_with_the_jit_disabled():
    jitted = _run(disable_jit=False)
    plain = _run(disable_jit=True)
    assert jitted["jit"] and not plain["jit"]
    np.testing.assert_allclose(plain["loss"], jitted["loss"], rtol=1e-12)
    np.testing.assert_allclose(plain["x_grad"], jitted["x_grad"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain["bias_grad"], jitted["bias_grad"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain["x_after_adam"], jitted["x_after_adam"], rtol=1e-12)


# ---- a damaged on-disk cache ------------------------------------------------------------------

CACHE_SCRIPT = """
import warnings
import numpy as np
from tinygrad_ln import Tensor, nn
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    x = Tensor(np.ones((2, 4), np.float32), requires_grad=True)
    nn.LayerNorm(4)(x).sum().backward()
print(len([w for w in caught if "damaged Numba cache" in str(w.message)]), x.grad.data.sum())
"""


def _run_with_cache(folder: Path) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder), "PYTHONPATH": str(REPO)}
    env.pop("NUMBA_DISABLE_JIT", None)
    done = subprocess.run([sys.executable, "-c", CACHE_SCRIPT], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


@pytest.mark.parametrize("damage", ["empty index", "truncated index", "garbled data"])
def test_a_damaged_cache_file_is_replaced_with_one_warning(damage, tmp_path):
    assert _run_with_cache(tmp_path) == "0"  # fills the cache
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    index = next(folder.glob("kernels.layer_norm_forward-*.nbi"))
    data = next(folder.glob("kernels.layer_norm_forward-*.nbc"))
    if damage == "empty index":
        index.write_bytes(b"")
    elif damage == "truncated index":
        index.write_bytes(index.read_bytes()[:20])
    else:
        data.write_bytes(b"\x93not a pickle" * 10)
    assert _run_with_cache(tmp_path) == "1"  # recovered: one warning, and the right gradient
    assert _run_with_cache(tmp_path) == "0"  # the fresh files it saved load cleanly
