"""Model answer, task 1."""



def mul_backward(g, a, b):
    # out = a * b: d out / d a = b and d out / d b = a, elementwise; g's shape, summed down by the engine
    return g * b, g * a


def exp_backward(g, y):
    return g * y  # d exp(x)/dx = exp(x) = y
