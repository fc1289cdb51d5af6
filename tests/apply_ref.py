"""Independent references for tests/cnn-apply.bats: TensorFlow's conv2d and max_pool
geometry rebuilt on PyTorch (explicit padding, extra pixel at the bottom/right for SAME).

    apply_ref.py conv IN.npy FILTERS.npy STRIDE PADDING OUT.npy
    apply_ref.py maxpool IN.npy K STRIDE PADDING OUT.npy
"""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F


def pads(n, k, s, padding):
    if padding == "VALID":
        return 0, 0
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).permute(0, 3, 1, 2)


def main():
    op = sys.argv[1]
    x = np.load(sys.argv[2])
    if op == "conv":
        w = np.load(sys.argv[3])
        s, padding, out = int(sys.argv[4]), sys.argv[5], sys.argv[6]
        kh, kw = w.shape[:2]
    else:
        kh = kw = int(sys.argv[3])
        s, padding, out = int(sys.argv[4]), sys.argv[5], sys.argv[6]
    t, b = pads(x.shape[1], kh, s, padding)
    l, r = pads(x.shape[2], kw, s, padding)
    if op == "conv":
        xp = F.pad(nchw(x), (l, r, t, b))
        wt = torch.from_numpy(w.astype(np.float64)).permute(3, 2, 0, 1)
        y = F.conv2d(xp, wt, stride=s)
    else:
        # padding must never win the max: pad with -inf
        xp = F.pad(nchw(x), (l, r, t, b), value=-math.inf)
        y = F.max_pool2d(xp, (kh, kw), stride=s)
    np.save(out, y.permute(0, 2, 3, 1).numpy().astype(np.float32))


main()
