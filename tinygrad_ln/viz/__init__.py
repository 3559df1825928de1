"""Draw the graph that ``backward`` walks, as a graphviz picture.

    from tinygrad_ln.viz import draw_graph
    loss = F.cross_entropy(model(x), y)
    draw_graph(loss, params=model).render("graph", format="svg")

What the picture shows (docs/viz.md has it all, with pictures):

- **op nodes** (rounded blue boxes): one per op that recorded the graph, with the op's name,
  the shape of its output (and its dtype when not float32) and small constants it used;
- **parameters** (green boxes) labelled with their dotted names, **other inputs** (yellow ovals),
  and the **output** the graph was drawn from (red, double border);
- **modules**: ops run inside a module's ``forward`` sit in a frame labelled with the module's
  dotted name and class. A module with no sub-modules (Linear, LayerNorm...) is one 3-d box
  with its parameters and their gradients; ``expand`` opens it;
- **repeated steps**: a stack/cat of step results, or a chain of calls of one module (a loop
  written by hand), fold into step 0 drawn in full and one box for the other steps, which loops
  back on itself;
- **numbers**: each node's gradient norm, coloured from vanishing to exploding, all from one
  backward pass draw_graph runs itself; with ``show_values`` each value and signed gradient.

How it is built, one pass per module, each a loop (never a recursion, so a 100,000-op chain is
fine), each naming things by their position in the graph (never ``id()``, so the same program
gives the same DOT text):

    collect.py    the nodes backward would visit, in forward order
    modules.py    the names of the modules that ran them, and of the parameters
    fold.py       what each op becomes: drawn alone, in a module's box or frame, or folded
    drawing.py    the drawn items, the leaves beside them, the edges, the max_nodes cut
    budget.py     how long dot will take; draw.py folds or cuts until it fits the budget
    gradients.py  the gradients and values, from one backward pass of draw_graph's own
    saved.py      what each node keeps alive for backward (show_saved)
    labels.py     the text in each node and its tooltip, and the gradient colours
    dot.py        the DOT text, and the Digraph that renders it
    draw.py       draw_graph: the options, and the passes in order

Rendering (``.render()``, ``.pipe()``, Jupyter's inline display) needs the Graphviz ``dot``
program; ``.source`` (the DOT text) does not.
"""

from .dot import DotTimeout, GraphvizNotFound
from .draw import draw_graph

__all__ = ["draw_graph", "GraphvizNotFound", "DotTimeout"]
