#!/usr/bin/env python3
"""Data-parallel cnn-train (issue 19): measured on this machine, then modelled for many.

1. On this machine, the seed's network at SIZE (default 224), batch 10, STEPS steps:
   A  one process x 2 threads (cnn-train as always: fc1's Adam fused into its backward)
   B  mpirun -np 2, each rank 1 thread (the same 2 cores): images/s, gradient bytes summed
      per step, time in the sums' MPI calls
   C  mpirun -np 1 x 2 threads: the shared path's parts on one machine (forward and backward
      per layer, the unfused optimiser step), the inputs of the model below
2. The scaling model for N = 2..64 machines like this one (1 rank x 2 threads each) at 10,
   25 and 100 Gb/s, global batch 10 (the seed's), 100 and 1000:
     step(N) = b * t_img + t_opt + max(0, t_sum - b * t_hide),  b = ceil(B / N)
     t_sum   = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency   (ring allreduce)
   t_img: forward + backward per image (C), t_opt: the optimiser step (C, the same on every
   rank), t_hide: per image, the backward of the layers below fc1 (C), which fc1's gradient
   sum (started as soon as fc1's backward is done) can run behind; bytes: every parameter's
   gradient (B). Images/s = B / step(N); the speed-up is over one plain process (run A, its
   fused optimiser included), B * t_img(A) + t_opt(A).
Usage: bench/mpi.py [--size 224] [--steps 12] [--latency-us 20]
Env: PETCNN_BIN (default bin/), PETCNN_PYTHON.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PETCNN_BIN", os.path.join(TOP, "bin"))
PY = os.environ.get("PETCNN_PYTHON", "/usr/bin/python3")


def profile(cmd):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode:
        sys.exit("bench/mpi.py: %s failed:\n%s" % (" ".join(cmd), p.stderr))
    e = p.stderr
    r = {"layers": []}
    for m in re.finditer(r"^  (\S+)\s+(\S+)\s+(\d+x\d+x\d+)\s+([\d.]+)\s+([\d.]+)", e, re.M):
        r["layers"].append((m.group(1), float(m.group(4)), float(m.group(5))))
    r["opt"] = float(re.search(r"^  optimiser\s+([\d.]+)", e, re.M).group(1))
    m = re.search(r"^  gradient sums \(MPI calls\)\s+([\d.]+)", e, re.M)
    r["sum"] = float(m.group(1)) if m else 0.0
    r["median"] = float(re.search(r"steady-state step \(the median\) ([\d.]+) ms", e).group(1))
    m = re.search(r"([\d.]+) MB of gradients summed per step", e)
    r["mb"] = float(m.group(1)) if m else 0.0
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--latency-us", type=float, default=20.0)
    a = ap.parse_args()
    batch = 10
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "train.npy")
        subprocess.run([PY, os.path.join(TOP, "tests", "nn-shapes.py"), "60", str(a.size), "1", data],
                       check=True)
        train = [os.path.join(BIN, "cnn-train"), "--train", data, "-o", os.path.join(d, "m.npz"), "-q",
                 "--profile", "--stop-after", str(a.steps), "--checkpoint-every", "100000s",
                 "--batch", str(batch)]
        mpi = ["mpirun", "--oversubscribe", "-np"]
        A = profile(train + ["--threads", "2"])
        B = profile(mpi + ["2"] + train + ["--threads", "1"])
        C = profile(mpi + ["1"] + train + ["--threads", "2"])
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s*(.*)", cpu).group(1)
    print("## On this machine (%s, %d cores), %dx%d, batch %d, median of %d steps" %
          (model, os.cpu_count(), a.size, a.size, batch, a.steps))
    print()
    print("| run | ms/step | images/s | gradient MB summed/step | ms/step in the sums' MPI calls |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in (("1 process x 2 threads", A), ("mpirun -np 2, 1 thread each", B),
                    ("mpirun -np 1 x 2 threads (the shared path)", C)):
        print("| %s | %.1f | %.2f | %s | %s |" % (name, r["median"], batch * 1e3 / r["median"],
                                                 "%.1f" % r["mb"] if r["mb"] else "-",
                                                 "%.1f" % r["sum"] if name.startswith("mpirun -np 2") else "-"))
    names = [l[0] for l in C["layers"]]
    fc1 = names.index("fc1") if "fc1" in names else len(names) - 2
    t_img = sum(f + b for _, f, b in C["layers"]) / batch / 1e3
    t_hide = sum(b for _, _, b in C["layers"][:fc1]) / batch / 1e3
    t_opt = C["opt"] / 1e3
    nbytes = B["mb"] * 1e6
    lat = a.latency_us * 1e-6
    print()
    print("Model inputs (run C): forward+backward %.1f ms per image, of which %.1f ms is the "
          "backward below fc1 (what fc1's sum can hide behind); optimiser %.1f ms per step; "
          "%.1f MB of gradients per step (run B); latency %.0f us per message hop." %
          (t_img * 1e3, t_hide * 1e3, t_opt * 1e3, nbytes / 1e6, a.latency_us))
    # one machine as it runs without mpirun (run A: fc1's Adam fused into its backward)
    a_img = sum(f + b for _, f, b in A["layers"]) / batch / 1e3
    a_opt = A["opt"] / 1e3
    for B_ in (10, 100, 1000):
        one = B_ * a_img + a_opt
        print()
        print("### Global batch %d: images/s (speed-up over one plain process on one machine, %.2f "
              "images/s)" % (B_, B_ / one))
        print()
        print("| N | share | 10 Gb/s | 25 Gb/s | 100 Gb/s |")
        print("| --- | --- | --- | --- | --- |")
        best = {}
        for n in (2, 4, 8, 10, 16, 32, 64):
            b = math.ceil(B_ / n)
            cells = []
            for gbps in (10, 25, 100):
                t_sum = 2 * (n - 1) / n * nbytes * 8 / (gbps * 1e9) + 2 * (n - 1) * lat
                step = b * t_img + t_opt + max(0.0, t_sum - b * t_hide)
                ips = B_ / step
                if ips > best.get(gbps, (0, 0))[1] * 1.05:
                    best[gbps] = (n, ips)
                cells.append("%.1f (%.2fx)" % (ips, ips / (B_ / one)))
            print("| %d | %d | %s |" % (n, b, " | ".join(cells)))
        print()
        print("Scaling stops (the last N in the table that adds 5% or more): " +
              ", ".join("%d Gb/s at N = %d" % (g, best[g][0]) for g in sorted(best)))


if __name__ == "__main__":
    main()
