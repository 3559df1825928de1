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
- **loops**: steps proven alike (the same ops, modules, shapes, settings and parameters, found
  by data flow wherever the loss sits) fold into one step drawn in full and one box for the
  others, which loops back on itself and shows the extremes of their gradients; nothing else
  folds;
- **shared weights**: a parameter read in several places is drawn once, with an edge to each use;
- **numbers**: each node's gradient norm, coloured from vanishing to exploding, all from one
  backward pass draw_graph runs itself; with ``show_values`` each value and signed gradient.

How it is built, one pass per module, each a loop (never a recursion, so a 100,000-op chain is
fine), each naming things by their position in the graph (never ``id()``, so the same program
gives the same DOT text):

    options.py    every option checked first, each mistake a one-line error
    collect.py    the nodes backward would visit, in forward order
    modules.py    the names of the modules that ran them, and of the parameters
    steps.py      which ops are the steps of a loop, proven alike op by op
    fold.py       what each op becomes: drawn alone, in a module's box or frame, or folded
    drawing.py    the drawn items, the leaves beside them, the edges, the max_nodes cut
    budget.py     how long the picture will take; draw.py folds or cuts until it fits the budget
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
