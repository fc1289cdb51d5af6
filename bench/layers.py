#!/usr/bin/python3
"""Layer by layer against oneDNN: each convolution's forward time in cnn-train (its
--profile, the network frozen below a new head, so every convolution runs its inference
forward) beside the same convolution in PyTorch's oneDNN (ONEDNN_VERBOSE's execution
times), for torchvision's ResNet-18 and MobileNetV2 at 224. Where bench/onnx_infer.py
gives one ratio per network, this says which layers make it, and how much of PyTorch's
forward is its convolutions and how much the rest (reorders, its own operators, the
framework between them).

Usage (Debian's /usr/bin/python3 with torch, torchvision, numpy):
  layers.py [--bin DIR] [--threads N] [--batch N] [--steps N] [--nets resnet18,mobilenet_v2]
            [--isa avx2] [--work DIR]

Method. Ours: `cnn-train --init-from NET.npz --freeze-below HEAD --augment flip --profile`
over --steps steps; its forward column, ms per step (layers run by bands of rows share
their bands' time as --profile says). PyTorch at its best for this forward, as
bench/onnx_infer.py's fastest variant for these networks: TorchScript frozen and
optimize_for_inference'd (batch norms folded, convolution and activation fused), glibc's
allocator tuned, denormals flushed; --steps forwards timed whole, then --steps more under
oneDNN's verbose mode, each convolution's median execution time. Convolutions are matched
in order by their output's shape and kernel height. The ratio is oneDNN's time / ours
(above 1: ours is faster). One process each, the same machine, one after the other: the
per-layer ratios move with the host's noise as the whole-network ones do.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

CLASSES = 37
HEADS = {"resnet18": "fc_Gemm", "mobilenet_v2": "classifier_classifier_1_Gemm"}
PROFILE_ROW = re.compile(r"^\s+(\S+)\s+(\S+)\s+(\d+)x(\d+)x(\d+)\s+([0-9.]+)\s+([0-9.]+)(.*)$")


def ours(a, npz, head, data, out):
    """[(name, (oh, ow, oc, kh), forward ms, note)] of each convolution, and the sum of
    every layer's forward."""
    import numpy as np
    with np.load(npz) as z:  # a conv's weights are [kh, kw, cin/groups, cout]
        kh = {k.split("/")[0]: z[k].shape[0] for k in z.files if "/weights" in k}
    r = subprocess.run([os.path.join(a.bin, "cnn-train"), "--init-from", npz, "--freeze-below",
                        head, "--augment", "flip", "--train", data, "-o", out, "-q",
                        "--threads", str(a.threads), "--batch", str(a.batch),
                        "--stop-after", str(a.steps + 1), "--profile"],
                       check=True, capture_output=True, text=True)
    convs, total = [], 0.0
    for line in r.stderr.splitlines():
        m = PROFILE_ROW.match(line)
        if not m:
            continue
        total += float(m.group(6))
        if m.group(2) == "conv":
            shape = tuple(int(m.group(k)) for k in (3, 4, 5)) + (kh[m.group(1)],)
            convs.append((m.group(1), shape, float(m.group(6)),
                          "bands" if "(by bands)" in m.group(8) else ""))
    if not convs:
        sys.exit("layers.py: no convolution rows in cnn-train's --profile:\n" + r.stderr)
    return convs, total


def onednn(torch, net, a):
    """([((oh, ow, oc, kh), median ms)] of each convolution in order, the median ms of the
    other primitives a forward runs, the whole forward's ms)."""
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # as ours compute (bench/train.py says why)
    x = torch.rand(a.batch, 3, 224, 224) * 255
    with torch.no_grad():
        f = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x)))
        for _ in range(5):
            f(x)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            f(x)
        whole = (time.perf_counter() - t0) / a.steps * 1e3
        # oneDNN prints from C to file descriptor 1: catch it in a file
        sys.stdout.flush()
        saved = os.dup(1)
        log = tempfile.TemporaryFile()
        os.dup2(log.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                for _ in range(a.steps):
                    f(x)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    log.seek(0)
    execs = [ln.split(",") for ln in log.read().decode(errors="replace").splitlines()
             if ln.startswith(("onednn_verbose,exec", "dnnl_verbose,exec"))]
    if len(execs) % a.steps:
        sys.exit("layers.py: %d oneDNN executions over %d forwards" % (len(execs), a.steps))
    per = len(execs) // a.steps
    convs, other = [], 0.0
    for k in range(per):
        ms = statistics.median(float(execs[s * per + k][-1]) for s in range(a.steps))
        if execs[k][3] != "convolution":
            other += ms
            continue
        desc = execs[k][-2]
        oc, oh, kh = (int(re.search(p, desc).group(1)) for p in (r"oc(\d+)", r"oh(\d+)",
                                                                    r"kh(\d+)"))
        ow = re.search(r"ow(\d+)", desc)
        convs.append(((oh, int(ow.group(1)) if ow else oh, oc, kh), ms))
    return convs, other, whole


def report(name, mine, total, theirs, other, whole):
    print("   %-36s %-12s %9s %9s %7s" % ("layer", "output", "petcnn ms", "oneDNN ms", "ratio"))
    free = list(range(len(theirs)))
    rows = []
    for lname, shape, ms, note in mine:
        k = next((k for k in free if theirs[k][0] == shape), None)
        if k is None:
            print("   %-36s %-12s %9.3f %9s" % (lname[:36], "%dx%dx%d" % shape[:3], ms, "-"))
            continue
        free.remove(k)
        rows.append((lname, ms, theirs[k][1]))
        print("   %-36s %-12s %9.3f %9.3f %6.2fx%s" % (lname[:36], "%dx%dx%d" % shape[:3], ms,
              theirs[k][1], theirs[k][1] / ms if ms > 0 else float("inf"),
              "  (by bands)" if note else ""))
    if free:
        print("   (%d of oneDNN's convolutions matched none of ours)" % len(free))
    a_ms, b_ms = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print("%-14s convolutions: petcnn %.2f ms, oneDNN %.2f ms, ratio %.2fx; every layer's "
          "forward: petcnn %.2f ms; PyTorch's whole forward %.2f ms (its other oneDNN "
          "primitives %.2f ms, the rest outside oneDNN %.2f ms)"
          % (name, a_ms, b_ms, b_ms / a_ms, total, whole, other, whole - b_ms - other))
    lost = sorted(((r[1] - r[2], r[0]) for r in rows if r[1] > r[2]), reverse=True)[:5]
    if lost:
        print("   most time behind oneDNN: " + ", ".join("%s %.2f ms" % (n, d) for d, n in lost))


def main():
    ap = argparse.ArgumentParser()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import onnx_infer as oi
    oi.bench_args(ap)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    oi.torch_env(a)
    import torch

    work = oi.work_dir(a, "layers")
    data = os.path.join(work, "ft.npy")
    oi.dataset(data, 8 * a.batch, 224, CLASSES)
    print("== each convolution's forward at 224 against oneDNN's, batch %d, %d threads; CPU: "
          "%s%s" % (a.batch, a.threads, oi.cpu_name(),
                    "; both sides held to AVX2" if a.isa else ""))
    for name in a.nets.split(","):
        net = oi.network(name)
        npz = oi.export(net, name, work, a.bin)
        mine, total = ours(a, npz, HEADS[name], data, os.path.join(work, name + "-ft.npz"))
        report(name, mine, total, *onednn(torch, net, a))


if __name__ == "__main__":
    main()
