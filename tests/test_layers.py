"""The package is one engine in three layers (README, "Start here"): the imports say so.

The idea (tensor.py, autograd.py, ops.py) imports no checks beyond checks.py's seams and no speed
machinery; the speed layer (backend/) is imported only when a fused op or a kernel is needed, so
a program of primitive ops with SGD never loads Numba; and no module imports one above it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinygrad_ln"

# each module's layer: a module may import only from its own layer or those below it
LAYERS = {
    "checks": 0, "dtypes": 0, "random": 0,
    "autograd": 1, "ops": 2, "backend": 3, "tensor_methods": 3, "tensor": 4,
    "gradcheck": 5, "nn": 5, "optim": 6, "serialize": 5, "data": 5, "viz": 7, "__init__": 8,
}


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(the tinygrad_ln module imported, whether at module level) for each import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(PACKAGE).with_suffix("").parts[:-1])
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` imports are for type checkers only: nothing runs them
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            tree.body.remove(node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join([*base, node.module] if node.module else base)
            targets = [f"{target}.{alias.name}" if not node.module else target for alias in node.names]
            for t in targets:
                found.append((t.strip(".") or "__init__", id(node) in top_level))
    return found


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if module.endswith("__init__") and module != "__init__":
            module = module[: -len(".__init__")]
        for target, _ in _imports(path):
            if target.split(".")[0] in LAYERS and module.split(".")[0] != target.split(".")[0]:
                if _layer(target) > _layer(module):
                    upward.append(f"{module} imports {target}")
    assert not upward, upward


def test_the_idea_imports_nothing_of_the_speed_layer():
    for name in ("tensor.py", "autograd.py", "ops.py", "tensor_methods.py", "checks.py"):
        targets = [t for t, _ in _imports(PACKAGE / name)]
        assert not [t for t in targets if t.startswith("backend")], name


def _modules_loaded_by(code: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    return set(result.stdout.split())


def test_import_and_a_primitive_program_with_sgd_never_load_numba():
    loaded = _modules_loaded_by(
        "import numpy as np\n"
        "import tinygrad_ln as tl\n"
        "from tinygrad_ln import Tensor, nn, optim\n"
        "from tinygrad_ln.nn import functional as F\n"
        "model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))\n"
        "opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
        "with tl.fused(False):\n"
        "    norm = nn.LayerNorm(8)\n"
        "    loss = F.cross_entropy(norm(model[0](Tensor.randn(5, 4))) @ Tensor.randn(8, 3), np.arange(5) % 3)\n"
        "loss.backward(); opt.step()\n"
    )
    assert "numba" not in loaded and "tinygrad_ln.backend.fused_ops" not in loaded


def test_the_first_fused_op_loads_the_speed_layer():
    loaded = _modules_loaded_by("import tinygrad_ln as tl\nfrom tinygrad_ln import nn, Tensor\n"
                                "nn.LayerNorm(4)(Tensor.randn(2, 4))\n")
    assert {"numba", "tinygrad_ln.backend.fused_ops", "tinygrad_ln.backend.kernels"} <= loaded
