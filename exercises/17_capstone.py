"""Task 17, the capstone: train a character model on your own engine.

The grader builds a small character model, Embedding -> LN-RNN -> LayerNorm -> Linear, and trains
it to predict the next character of a short text. Every backward pass runs your code in the
engine's place: your topological order (task 4) and backward loop (task 5), your unbroadcast
(task 3) and matrix product (task 6), your LayerNorm (task 8) and your backpropagation through
time (task 16). What is left to write is the training step itself, with plain gradient descent.

Before training, the grader checks two of your steps on one batch against the right update. Then
it trains for 150 steps with lr = 1.0, and passes when the training loss, averaged over the last 10
steps, is below 0.6 nats per character (guessing among the text's 25 characters is ln 25 = 3.22).
It takes a few seconds.
"""

from tinygrad_ln import Tensor, nn  # noqa: F401
from tinygrad_ln.nn import functional as F  # noqa: F401


def train_step(model: nn.Module, inputs: Tensor, targets: Tensor, lr: float) -> float:
    """One step of training; return the loss (a float) computed before the step.

    ``model(inputs)`` gives logits (T * N, V) for the characters ``inputs`` (T, N); ``targets``
    (T, N) are the characters that follow. The loss is the mean cross-entropy
    (``F.cross_entropy``, with the targets flattened to (T * N,)). Then:
      * compute the gradients with backward, into each parameter's ``.grad``
        (``model.parameters()`` lists them): mind what ``.grad`` held before;
      * clip: if the norm of all gradients together (the square root of the sum of the squares
        of every element of every parameter's gradient) is above 1, scale them all so that it is 1;
      * move each parameter against its gradient by ``lr`` times it, in place on ``p.data``.
    No optimizer from tinygrad_ln.optim and no clip_grad_norm_: write those two lines yourself.
    """
    raise NotImplementedError("train_step")
