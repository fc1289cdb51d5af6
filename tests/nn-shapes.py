# A small two-class dataset stream for the ConvNet tests when no pet data is at hand:
# a filled square (class 0) or disc (class 1) in a random bright colour on a random dark
# background. Usage: nn-shapes.py N SIZE SEED OUT [unlabelled]
import sys

import numpy as np

n, size, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = np.random.default_rng(seed)
img = np.zeros((n, size, size, 3), np.uint8)
lab = np.zeros(n, np.int64)
yy, xx = np.mgrid[:size, :size]
for i in range(n):
    c = r.integers(0, 2)
    lab[i] = c
    img[i] = r.integers(0, 120, 3)
    rad = r.integers(size // 4, size // 3 + 1)
    cy, cx = r.integers(rad, size - rad, 2)
    if c == 0:
        m = (np.abs(yy - cy) <= rad) & (np.abs(xx - cx) <= rad)
    else:
        m = (yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad
    img[i][m] = r.integers(130, 256, 3)
if len(sys.argv) > 5:
    lab[::2] = -1
with open(out, 'wb') as f:
    np.save(f, img)
    np.save(f, lab)
    np.save(f, np.array(['square', 'circle']))
