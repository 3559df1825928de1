"""Model answer, task 4: Kahn's algorithm (count each node's users, release a node when all have run)."""


def topological_order(roots):
    users = {}
    seen, to_visit = set(roots), list(roots)
    while to_visit:
        node = to_visit.pop()
        for tensor in node.inputs:
            parent = tensor.grad_fn
            if parent is not None:
                users[parent] = users.get(parent, 0) + 1
                if parent not in seen:
                    seen.add(parent)
                    to_visit.append(parent)
    order, ready = [], [root for root in dict.fromkeys(roots) if users.get(root, 0) == 0]
    while ready:
        node = ready.pop()
        order.append(node)
        for tensor in node.inputs:
            parent = tensor.grad_fn
            if parent is not None:
                users[parent] -= 1
                if users[parent] == 0:
                    ready.append(parent)
    return order
