"""The peer for bench/pack.sh: Pillow doing pet-pack's job on one thread (open, convert to
RGB, antialiased resize), optionally with draft() (libjpeg DCT scaling, as pet-pack does
by default). Usage: pack_pillow.py make DIR N [W H] | run SIZE [draft] < list; prints images/s."""
import sys
import time

import numpy as np
from PIL import Image


def make(out, n, w=500, h=375):
    """n photo-like w x h JPEGs: smooth colour fields, edges, texture and mild noise."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:h, 0:w] / float(h)
    for i in range(n):
        f = rng.uniform(1, 8, (3, 2))
        ph = rng.uniform(0, 6, 3)
        a = np.stack([128 + 80 * np.sin(f[c, 0] * xx + f[c, 1] * yy + ph[c]) for c in range(3)], -1)
        cx, cy, r = rng.uniform(0.2, 1.1), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)
        a[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] *= rng.uniform(0.3, 1.2, 3)
        a += (25 * np.sin(40 * 375 / h * xx * rng.uniform(0.5, 2)) * np.sin(35 * 375 / h * yy))[..., None]  # fur-like texture
        a += rng.normal(0, 4, a.shape)
        Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(f"{out}/img_{i:04d}.jpg", quality=85)


def run(size, draft):
    paths = [line.split("\t")[0] for line in sys.stdin if not line.startswith("#")]
    t = time.perf_counter()
    for p in paths:
        im = Image.open(p)
        if draft:
            im.draft("RGB", (size, size))
        np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
    print("%.1f" % (len(paths) / (time.perf_counter() - t)))


if sys.argv[1] == "make":
    make(sys.argv[2], int(sys.argv[3]), *map(int, sys.argv[4:6]))
else:
    run(int(sys.argv[2]), len(sys.argv) > 3)
