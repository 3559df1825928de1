"""LayerNorm and Dropout on a batch of random embeddings: what each one does to the numbers.

A (20, 5, 10) batch (20 time steps, 5 sequences, 10 features) goes through nn.LayerNorm(10),
which rescales every 10-feature vector to mean 0 and standard deviation 1, then through
nn.Dropout(p=0.25), which in training mode zeroes about a quarter of the values and scales the
rest by 1 / (1 - 0.25), and in eval mode does nothing.

    python examples/seed_layernorm.py
"""

import numpy as np

import tinygrad_ln as tl
from tinygrad_ln import nn

tl.manual_seed(0)
seq_len, batch, dim = 20, 5, 10
x = tl.Tensor.randn(seq_len, batch, dim) * 3.0 + 1.0  # random embeddings: mean about 1, std about 3

layer_norm = nn.LayerNorm(dim)
dropout = nn.Dropout(p=0.25)
normalized = layer_norm(x)

# statistics of each 10-feature vector (std is the biased one, the std LayerNorm divides by)
before, after = x.numpy(), normalized.numpy()
print("LayerNorm(10): statistics over the 10 features of each position (sequence 0 shown)")
print(f"{'t':>3} | {'mean before':>11} {'std before':>10} | {'mean after':>10} {'std after':>10}")
for t in range(seq_len):
    v, w = before[t, 0], after[t, 0]
    print(f"{t:>3} | {v.mean():>11.3f} {v.std():>10.3f} | {w.mean():>10.1e} {w.std():>10.7f}")
print(f"all {seq_len * batch} positions after LayerNorm: |mean| <= {np.abs(after.mean(-1)).max():.1e}, "
      f"std in [{after.std(-1).min():.7f}, {after.std(-1).max():.7f}]\n"
      "(the std sits just below 1 because LayerNorm divides by sqrt(var + eps), eps = 1e-5)")

print("\nDropout(p=0.25) applied to the normalized batch")
for mode in ("train", "eval"):
    dropout.train(mode == "train")
    out = dropout(normalized).numpy()
    zeroed = out == 0
    survivors = ~zeroed
    scale = np.median(out[survivors] / after[survivors])
    print(f"  {mode:>5} mode: {zeroed.mean():6.1%} of the {out.size} values zeroed, "
          f"survivors multiplied by {scale:.4f}")
print(f"  (expected in train mode: 25% zeroed, survivors x 1/(1 - 0.25) = {1 / 0.75:.4f}; eval mode: identity)")
