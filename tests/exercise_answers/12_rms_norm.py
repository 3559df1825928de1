"""Model answer, task 12."""



def rms_norm_backward(g, x, weight, rrms):
    n = x.shape[1]
    r = rrms[:, None]
    gw = g * weight
    # d rrms / d x_j = -rrms^3 x_j / n, so dx_j = rrms gw_j - rrms^3 x_j / n * sum_i gw_i x_i
    dx = r * gw - r**3 * x * (gw * x).sum(axis=1, keepdims=True) / n
    return dx, (g * x * r).sum(axis=0)
