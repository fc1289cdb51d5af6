"""Independent reference for tests/cnn-apply.bats: TensorFlow's conv2d and max_pool
geometry rebuilt on PyTorch (explicit padding, the odd extra pixel at the bottom/right for
SAME; max-pool padding is -inf so it never wins), in float64.

    apply_ref.py CASES   each line: conv|maxpool IN.npy FILTERS.npy|K STRIDE PADDING GOT.npy

Compares every GOT.npy (cnn-apply's output) with the reference: same shape, and
|got - want| <= TOL * max(1, max |want|) elementwise with TOL = 1e-5: float32 sums of a
few dozen products lose about 1e-6 of the output's range (relative to each element would
fail where a sum cancels to near 0). Prints one line per case; exit 1 if any differs.
"""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-5


def pads(n, k, s, padding):
    if padding == "VALID":
        return 0, 0
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def reference(op, x, arg, s, padding):
    if x.ndim == 3:
        return reference(op, x[None], arg, s, padding)[0]
    if op == "conv":
        w = np.load(arg).astype(np.float64)
        kh, kw = w.shape[:2]
    else:
        kh = kw = int(arg)
    t, b = pads(x.shape[1], kh, s, padding)
    l, r = pads(x.shape[2], kw, s, padding)
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)
    if op == "conv":
        y = F.conv2d(F.pad(xt, (l, r, t, b)), torch.from_numpy(w).permute(3, 2, 0, 1), stride=s)
    else:
        y = F.max_pool2d(F.pad(xt, (l, r, t, b), value=-math.inf), (kh, kw), stride=s)
    return y.permute(0, 2, 3, 1).numpy()


bad = 0
for line in open(sys.argv[1]):
    op, inp, arg, s, padding, got_path = line.split()
    want = reference(op, np.load(inp), arg, int(s), padding)
    got = np.load(got_path)
    if got.dtype != np.float32 or got.shape != want.shape:
        print("FAIL", line.strip(), "got", got.dtype, got.shape, "want", want.shape)
        bad += 1
        continue
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    worst = float(np.abs(got - want).max()) / scale if want.size else 0.0
    print("FAIL" if worst > TOL else "ok", line.strip(), want.shape, "max err / range %.2g" % worst)
    bad += worst > TOL
sys.exit(1 if bad else 0)
