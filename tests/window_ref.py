# The window layers against PyTorch (float64): each DIR/NAME.npz that test_window wrote holds
# a case's geometry, inputs, our outputs and gradients; torch recomputes them with
# F.conv2d(groups=...), F.max_pool2d / F.avg_pool2d (ceil_mode, count_include_pad) and a
# mean for global pooling. Asymmetric pads go through F.pad first (for pools whose pads
# torch's own padding argument cannot say), torch's extra ceil windows then cut off; pads it
# can say are given to it, so its own output size and ceil rule are checked too. Agreement:
# max |ours - torch| / max |torch| per tensor at most 1e-4. Usage: window_ref.py DIR
import glob
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-4
CONV, MAX, AVG, AVGINCL, GAP = range(5)


def nchw(a):
    return torch.tensor(a, dtype=torch.float64).permute(0, 3, 1, 2).contiguous()


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


def pool(kind, x, k, s, pads, ceil, oh, ow):
    t, l, b, r = pads
    native = t == b and l == r and t <= k[0] // 2 and l <= k[1] // 2
    if native:
        p = (t, l)
        if kind == MAX:
            y = F.max_pool2d(x, k, s, p, ceil_mode=ceil)
        else:
            y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=kind == AVGINCL)
        if y.shape[2:] != (oh, ow):
            raise SystemExit(f'torch pools to {tuple(y.shape[2:])}, we to {(oh, ow)}')
        return y
    if kind == MAX:
        y = F.max_pool2d(F.pad(x, (l, r, t, b), value=-math.inf), k, s, ceil_mode=ceil)
    elif kind == AVGINCL:
        # the padded input is all there is: the window clipped to it, zeros counted
        y = F.avg_pool2d(F.pad(x, (l, r, t, b)), k, s, ceil_mode=ceil, count_include_pad=True)
    else:
        # sums over the window, divided by how many input cells it holds
        ones = F.pad(torch.ones_like(x[:1, :1]), (l, r, t, b))
        y = F.avg_pool2d(F.pad(x, (l, r, t, b)), k, s, ceil_mode=ceil, divisor_override=1)
        y = y / F.avg_pool2d(ones, k, s, ceil_mode=ceil, divisor_override=1)
    # F.pad moves the ceil rule's edge from the input to the padding: torch may add windows
    if y.shape[2] < oh or y.shape[3] < ow:
        raise SystemExit(f'torch pools to {tuple(y.shape[2:])}, fewer than our {(oh, ow)}')
    return y[:, :, :oh, :ow]


def relerr(ours, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.abs(np.asarray(ours, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-12))


def check(path):
    z = np.load(path)
    kind, h, w, c, kh, kw, sh, sw, pt, pl, pb, pr, ceil, groups, oc, B, oh, ow = (
        int(v) for v in z['meta'])
    x = nchw(z['in']).requires_grad_(True)
    dout = nchw(z['dout'])
    params = {}
    if kind == CONV:
        wt = torch.tensor(z['w'], dtype=torch.float64).permute(3, 2, 0, 1).contiguous()
        wt.requires_grad_(True)
        bt = torch.tensor(z['b'], dtype=torch.float64, requires_grad=True)
        y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), wt, bt, stride=(sh, sw), groups=groups)
        params = {'dw': (wt, (2, 3, 1, 0)), 'db': (bt, None)}
    elif kind == GAP:
        y = x.mean((2, 3), keepdim=True)
    else:
        y = pool(kind, x, (kh, kw), (sh, sw), (pt, pl, pb, pr), bool(ceil), oh, ow)
    if tuple(y.shape) != (B, oc, oh, ow):
        raise SystemExit(f'{path}: torch gives {tuple(y.shape)}, we {(B, oc, oh, ow)}')
    y.backward(dout)
    got = {'out': (z['out'], nhwc(y)), 'din': (z['din'], nhwc(x.grad))}
    for name, (t, perm) in params.items():
        g = t.grad.permute(*perm) if perm else t.grad
        got[name] = (z[name], g.numpy())
    bad = []
    for name, (ours, ref) in got.items():
        if ours.shape != ref.shape:
            bad.append(f'{name}: shape {ours.shape}, torch {ref.shape}')
            continue
        e = relerr(ours, ref)
        if not e <= TOL:
            bad.append(f'{name}: relative error {e:.3g}')
    return len(got), bad


def main():
    if len(sys.argv) != 2:
        raise SystemExit('usage: window_ref.py DIR')
    paths = sorted(glob.glob(os.path.join(sys.argv[1], '*.npz')))
    if not paths:
        raise SystemExit(f'{sys.argv[1]}: no cases')
    failed, tensors = 0, 0
    for p in paths:
        name = os.path.basename(p)[:-4]
        n, bad = check(p)
        tensors += n
        for b in bad:
            print(f'{name}: {b}')
        failed += bool(bad)
    print(f'window: {len(paths)} cases, {tensors} tensors, {failed} failed')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
