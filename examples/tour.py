"""A 20-line tour of the engine: build an expression, backpropagate, read gradients, check them."""

import tinygrad_ln as tl
from tinygrad_ln import Tensor

tl.manual_seed(0)
x = Tensor.randn(4, 3, requires_grad=True)   # a leaf: backward fills x.grad
w = Tensor.randn(3, 2, requires_grad=True)
b = Tensor.zeros(2, requires_grad=True)

h = (x @ w + b).tanh()                       # each op records a node: h.grad_fn
loss = (h * h).mean()                        # a one-element tensor
print("loss:", loss.item(), "made by", loss.grad_fn)

loss.backward()                              # walks the graph from loss back to the leaves
print("d loss / d b:", b.grad.numpy())

# finite differences in float64 agree with backward (raises GradcheckError if not)
print("gradcheck:", tl.gradcheck(lambda x, w, b: ((x @ w + b).tanh() ** 2).mean(), [x, w, b]))
