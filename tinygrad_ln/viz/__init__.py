"""Draw the graph that ``backward`` walks, as a graphviz picture.

    from tinygrad_ln.viz import draw_graph
    loss = F.cross_entropy(model(x), y)
    draw_graph(loss, params=model).render("graph", format="svg")

What the picture shows:

- **op nodes** (rounded blue boxes): one per op that recorded the graph, with the op's name,
  the shape of its output (and its dtype when not float32), small constants it used, and with
  ``show_saved`` what it saved for backward;
- **parameters** (green boxes) labelled with their dotted names, **other inputs** (yellow ovals),
  and the **output** the graph was drawn from (red, double border);
- **modules**: ops run inside a module's ``forward`` sit in a frame labelled with the module's
  dotted name and class, e.g. ``rnn.layer_norm_l0 (LayerNorm)``. A module with no sub-modules
  (Linear, LayerNorm, Embedding...) is drawn collapsed, as one 3-d box; name it in ``expand`` to
  see its primitive ops. Modules that contain others (RNN, Sequential, your model) are expanded;
- **repeated steps**: a ``stack`` or ``cat`` of many same-shaped results (an RNN's outputs)
  marks repetition. The ops needed by its i-th input and not by an earlier one form step i; step
  0 is drawn in full and the other steps fold into one dashed box with their counts;
- **gradients**: after a backward pass, each node shows its gradient norm on a colour scale that
  flags vanishing (< 1e-6, blue) and exploding (> 1e3, red) gradients.

The text is deterministic: nodes are named by their position in the graph's forward order, never
by ``id()``, so the same graph always gives byte-identical DOT. Every pass over the graph is a
loop, never a recursion, so a 100,000-op chain is fine; past ``max_nodes`` visible nodes the
nodes furthest from the output fold into one "not drawn" node.

Rendering (``.render()``, ``.pipe()``, Jupyter's inline display) needs the Graphviz ``dot``
program; ``.source`` (the DOT text) does not.
"""

from .dot import GraphvizNotFound
from .draw import draw_graph

__all__ = ["draw_graph", "GraphvizNotFound"]
