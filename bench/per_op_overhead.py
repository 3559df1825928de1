"""Per-op overhead: `(a*b + c).sum().backward()` on one-element tensors.

Nothing here is compute; it is the cost of the Python path Tensor -> Function.apply -> numpy,
and of the backward engine. PyTorch eager, when installed, runs the same line interleaved.
"""

from _common import THREADS, emit, load_torch, ratio_fields, time_interleaved  # isort: skip  (before numpy)

import tinygrad_ln as tl

NUMBER = 2000


def main() -> None:
    a, b, c = (tl.Tensor([v], requires_grad=True) for v in (1.0, 2.0, 3.0))

    def ours() -> None:
        (a * b + c).sum().backward()

    candidates = {"tinygrad_ln": ours}
    torch = load_torch()
    if torch is not None:
        ta, tb, tc = (torch.tensor([v], requires_grad=True) for v in (1.0, 2.0, 3.0))

        def theirs() -> None:
            (ta * tb + tc).sum().backward()

        candidates["torch"] = theirs
    times = time_interleaved(candidates, rounds=15, number=NUMBER)
    record = {"bench": "per_op_overhead", "case": "(a*b + c).sum().backward(), 1-element tensors",
              "threads": THREADS, "tinygrad_ln_us": times["tinygrad_ln"] * 1e6}
    if "torch" in times:
        record["torch_us"] = times["torch"] * 1e6
    record.update(ratio_fields("torch", times["tinygrad_ln"], times.get("torch"), 3.0))  # issue 15
    emit(record)


if __name__ == "__main__":
    main()
