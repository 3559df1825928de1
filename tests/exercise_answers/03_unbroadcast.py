"""Model answer, task 3: one dim at a time, from the right."""



def unbroadcast(grad, shape):
    while grad.ndim > len(shape):  # leading dims that broadcasting added
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
