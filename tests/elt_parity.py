# Parity with PyTorch for lib/nn/elt and lib/nn/lrn, torch's half: test_elt DIR writes
# DIR/elt.npz (inputs, our outputs and gradients, NHWC); this recomputes each case in torch,
# float64, NCHW, with autograd, and compares: max |ours - torch| / max |torch| per tensor at
# most 1e-5. LRN is also checked against its ONNX definition written out in numpy.
#
# PyTorch's local_response_norm pads its window (size//2 before, (size-1)//2 after), ONNX
# (floor((size-1)/2) before, ceil((size-1)/2) after): the same for an odd size, mirrored for
# an even one. ONNX is our contract, so torch runs on the channels in reverse order, which
# mirrors its window into ONNX's; for an even size the script also shows that torch's own
# window gives other numbers. Usage: elt_parity.py DIR
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-5


def relerr(ours, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.abs(np.asarray(ours, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-12))


def nchw(a):
    return torch.tensor(np.asarray(a, np.float64)).permute(0, 3, 1, 2)


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


def lrn_onnx(x, size, alpha, beta, bias):
    """ONNX's LRN on NHWC x, as its operator page writes it."""
    c = x.shape[-1]
    sq = np.zeros_like(x)
    for i in range(c):
        lo = max(0, i - int(math.floor((size - 1) / 2)))
        hi = min(c - 1, i + int(math.ceil((size - 1) / 2)))
        sq[..., i] = (x[..., lo:hi + 1] ** 2).sum(-1)
    return x / (bias + alpha / size * sq) ** beta


def lrn_torch(x, size, alpha, beta, bias):
    """ONNX's LRN through torch: the channels reversed, so torch's window is ONNX's."""
    return torch.flip(F.local_response_norm(torch.flip(x, [1]), size, alpha, beta, bias), [1])


def case(z, name):
    g = lambda k: z[name + '/' + k]
    p = g('p')
    x = nchw(g('x')).requires_grad_(True)
    dy = nchw(g('dy'))
    errs, params = {}, {}
    if name.startswith('clip'):
        y = F.hardtanh(x, float(p[0]), float(p[1]))
    elif name.startswith('leaky'):
        y = F.leaky_relu(x, float(np.float32(p[0])))
    elif name.startswith('affine'):
        for k in ('scale', 'shift'):
            params[k] = torch.tensor(g(k), dtype=torch.float64, requires_grad=True)
        y = x * params['scale'].view(1, -1, 1, 1) + params['shift'].view(1, -1, 1, 1)
        if p[0]:
            y = F.relu(y)
    elif name.startswith('lrn'):
        size, alpha, beta, bias = int(p[0]), *(float(np.float32(v)) for v in p[1:])
        y = lrn_torch(x, size, alpha, beta, bias)
        errs['y (ONNX formula, numpy)'] = relerr(g('y'), lrn_onnx(g('x').astype(np.float64), size,
                                                                     alpha, beta, bias))
        if size % 2 == 0:
            own = F.local_response_norm(x.detach(), size, alpha, beta, bias)
            print('  %s: torch\'s own even window differs from ONNX\'s by %.2e (relative), as it should'
                  % (name, relerr(g('y'), nhwc(own))))
            if relerr(g('y'), nhwc(own)) < 1e-3:
                errs['y is ONNX\'s, not torch\'s own even window'] = 1.0
    else:
        raise SystemExit('elt_parity: unknown case ' + name)
    y.backward(dy)
    errs['y'] = relerr(g('y'), nhwc(y))
    errs['dx'] = relerr(g('dx'), nhwc(x.grad))
    for k, t in params.items():
        errs['d' + k] = relerr(g('d' + k), t.grad.numpy())
    bad = {k: v for k, v in errs.items() if not v <= TOL}
    print('%s: %d tensors, worst %s %.2e' % (name, len(errs), max(errs, key=errs.get), max(errs.values())))
    for k, v in bad.items():
        print('  %s/%s: relative error %.3e > %g' % (name, k, v, TOL))
    return len(errs), not bad


if __name__ == '__main__':
    torch.set_num_threads(1)
    z = np.load(sys.argv[1] + '/elt.npz')
    names = sorted({k.rsplit('/', 1)[0] for k in z.files})
    results = [case(z, n) for n in names]
    ok = all(r[1] for r in results)
    print('elt: %d cases, %d tensors%s' % (len(results), sum(r[0] for r in results),
                                            ' within %g' % TOL if ok else ', some off'))
    sys.exit(0 if ok and results else 1)
