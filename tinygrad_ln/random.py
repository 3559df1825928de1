"""The library's one random number generator.

Every random draw (parameter init, ``Tensor.randn``/``rand``, dropout masks) comes from the
generator held here, so ``manual_seed(n)`` makes a whole run reproducible.
"""

from __future__ import annotations

import json

import numpy as np

_generator = np.random.Generator(np.random.PCG64(0))


def manual_seed(seed: int) -> None:
    """Reseed the generator behind every random draw of the library."""
    global _generator
    _generator = np.random.Generator(np.random.PCG64(int(seed)))


def generator() -> np.random.Generator:
    """The current generator (replaced, not mutated, by ``manual_seed``)."""
    return _generator


def get_rng_state() -> str:
    """The generator's full state as a JSON string, small enough to store in a checkpoint."""
    return json.dumps(_generator.bit_generator.state)


def set_rng_state(state: str) -> None:
    """Restore a state returned by ``get_rng_state``: the following draws repeat exactly."""
    _generator.bit_generator.state = json.loads(state)
