#!/usr/bin/python3
"""Writes the figures' small fixed inputs next to this script (run it again to remake them;
the output is byte-for-byte the same):

filters7x7.npy  float32 [7, 7, 1, 4], TensorFlow's conv2d layout [kh, kw, cin, cout], four
                filters for a grayscale image, in this order:
                0 horizontal edges: d/dy of a triangle-smoothed window (Sobel grown to 7x7),
                  positive where the image gets brighter downwards; taps sum to 0
                1 vertical edges: the same turned a quarter, brighter to the right
                2 blur: a Gaussian with sigma 1.5, taps sum to 1
                3 sharpen: twice the centre tap minus the blur, taps sum to 1
                Edge filters are scaled so their absolute taps sum to 2: on a 0..255 image
                a full step edge gives about 255.
pool4x4.npy     float32 [1, 4, 4, 1], the classic max-pool example: 2x2 windows with
                stride 2 give [[6, 8], [3, 4]].
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))

ramp = np.arange(-3, 4, dtype=np.float64)          # -3 .. 3
smooth = 4 - np.abs(ramp)                          # 1 2 3 4 3 2 1
dy = np.outer(ramp, smooth)
dy *= 2 / np.abs(dy).sum()
dx = dy.T.copy()
g = np.exp(-(ramp[:, None] ** 2 + ramp[None, :] ** 2) / (2 * 1.5 ** 2))
blur = g / g.sum()
sharpen = -blur
sharpen[3, 3] += 2

filters = np.stack([dy, dx, blur, sharpen], axis=-1)[:, :, None, :].astype(np.float32)
np.save(os.path.join(here, "filters7x7.npy"), filters)

pool = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float32)
np.save(os.path.join(here, "pool4x4.npy"), pool.reshape(1, 4, 4, 1))
