#!/usr/bin/python3
"""Inference of torchvision's ResNet-18 and MobileNetV2 at 224: cnn-eval on the network
cnn-convert made of torch.onnx.export's file, beside PyTorch running the same weights.

Usage (Debian's /usr/bin/python3 with torch, torchvision, numpy):
  onnx_infer.py [--bin DIR] [--threads N] [--images N] [--batch N] [--rounds N]
                [--nets resnet18,mobilenet_v2] [--isa avx2] [--work DIR]

Method. Both sides get the same uint8 images and the same thread count (our --threads,
torch.set_num_threads), batch --batch, in eval mode. PyTorch runs at its best: glibc's
allocator tuned and denormals flushed as bench/train.py does, and the fastest of three
ways to run the network (eager under inference_mode, channels_last, TorchScript frozen
with optimize_for_inference), each round; the line names the one that won. Our time is
cnn-eval's wall time on --images images less its wall time on one batch (start-up and
model loading out of the window), each the least of as many runs as PyTorch has variants,
so both sides get as many tries per round; PyTorch's is the time of its loop after a
warm-up batch. Rounds alternate ours then theirs; the best round of each is reported (the least
disturbed on a shared machine), and the ratio is ours / PyTorch's images per second.
Weights are random, batch norm statistics randomised: speed does not depend on them, and
tests/cnn-convert.bats checks that the probabilities agree.
"""
import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

# --isa avx2: ATen's kernels and oneDNN's JIT held to AVX2 (bench/train.py's TORCH_AVX2)
TORCH_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}
TORCH_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736",
                "MALLOC_TOP_PAD_": "1073741824"}


def dataset(path, n, size, classes):
    rng = np.random.default_rng(1)
    with open(path, "wb") as f:
        np.save(f, rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
        np.save(f, (np.arange(n) % classes).astype(np.int64))
        np.save(f, np.array(["class%d" % k for k in range(classes)]))


def bench_args(ap):
    """The options every bench of these networks takes."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--bin", default=os.environ.get("PETCNN_BIN", os.path.join(top, "bin")))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--nets", default="resnet18,mobilenet_v2")
    ap.add_argument("--isa", choices=["avx2"],
                    help="both sides held to AVX2 on an AVX-512 CPU, as bench/train.py's --isa")
    ap.add_argument("--work")


def torch_env(a):
    """Runs this script again with PyTorch's allocator tuned (and AVX2 held, --isa): torch
    reads these as it loads."""
    want = dict(TORCH_MALLOC, **(dict(TORCH_AVX2, PETCNN_ISA=a.isa) if a.isa else {}))
    if any(os.environ.get(k) != v for k, v in want.items()):
        os.environ.update(want)
        os.execv(sys.executable, [sys.executable] + sys.argv)


def work_dir(a, name):
    """--work, or a new temporary directory for bench name's files."""
    work = a.work or tempfile.mkdtemp(prefix="petcnn-%s-bench-" % name)
    os.makedirs(work, exist_ok=True)
    return work


def cpu_name():
    return subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"],
                          capture_output=True, text=True).stdout.strip()


def export(net, name, work, bin_dir):
    """net exported by torch.onnx.export (opset 13, any batch) and converted by
    cnn-convert: the .npz's path."""
    onnx, npz = os.path.join(work, name + ".onnx"), os.path.join(work, name + ".npz")
    torch.onnx.export(net, torch.zeros(1, 3, 224, 224), onnx, opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    subprocess.run([os.path.join(bin_dir, "cnn-convert"), "-q", onnx, "-o", npz], check=True)
    return npz


def network(name):
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(num_classes=1000).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


def torch_variants(net, batch, features=False):
    """PyTorch at its best, as a user who cares would run it for inference: eager under
    inference_mode, the same in channels_last (oneDNN's NHWC convolutions), and TorchScript
    frozen and optimize_for_inference'd (BN folded, conv+ReLU fused, MKLDNN layouts). Each
    is checked against eager (probabilities within 1e-4; features, a network cut below its
    head, within 1e-4 of their largest) so no broken variant is timed."""
    x = torch.rand(batch, 3, 224, 224) * 255
    variants = {"eager": (net, False)}
    out = (lambda y: y / y.abs().max()) if features else (lambda y: torch.softmax(y, 1))
    with torch.inference_mode():
        want = out(net(x))
    cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    variants["channels_last"] = (cl, True)
    with torch.no_grad():
        variants["jit-optimized"] = (torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(copy.deepcopy(net), x))), False)
    for name, (f, last) in list(variants.items()):
        with torch.inference_mode():
            got = out(f(x.contiguous(memory_format=torch.channels_last) if last else x))
        if (got - want).abs().max().item() > 1e-4:
            print("   (PyTorch %s left out: its outputs differ by %.2g)"
                  % (name, (got - want).abs().max().item()))
            del variants[name]
    return variants


def torch_rate(variants, images, threads, batch):
    """The best variant's images per second, and its name."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as ours compute (bench/train.py says why)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    best = (0.0, "")
    for name, (f, last) in variants.items():
        xv = x.contiguous(memory_format=torch.channels_last) if last else x.contiguous()
        with torch.inference_mode():
            f(xv[:batch])
            f(xv[:batch])
            t0 = time.perf_counter()
            for i in range(0, len(xv), batch):
                f(xv[i:i + batch])
            best = max(best, (len(xv) / (time.perf_counter() - t0), name))
    return best


def ours(bin_dir, model, data, threads, batch):
    t0 = time.perf_counter()
    subprocess.run([os.path.join(bin_dir, "cnn-eval"), "-q", "-m", model, "--threads",
                    str(threads), "--batch", str(batch), data], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    bench_args(ap)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    torch_env(a)
    work = work_dir(a, "onnx")
    big, small = os.path.join(work, "big.npy"), os.path.join(work, "small.npy")
    dataset(big, a.images, 224, 1000)
    dataset(small, a.batch, 224, 1000)
    images = np.load(big)
    print("== ONNX inference at 224, batch %d, %d threads, %d images; CPU: %s%s"
          % (a.batch, a.threads, a.images, cpu_name(),
             "; both sides held to AVX2" if a.isa else ""))
    for name in a.nets.split(","):
        net = network(name)
        npz = export(net, name, work, a.bin)
        variants = torch_variants(net, a.batch)
        best_ours, best_torch = 0, (0.0, "")
        for r in range(a.rounds):
            # as many tries as PyTorch's variants get each round, the least disturbed of each
            tries = len(variants)
            t = (min(ours(a.bin, npz, big, a.threads, a.batch) for _ in range(tries)) -
                 min(ours(a.bin, npz, small, a.threads, a.batch) for _ in range(tries)))
            theirs = torch_rate(variants, images, a.threads, a.batch)
            if t <= 0:
                # this VM faults fresh memory in at 0.45-20 GB/s: a start-up can outlast the work
                print("   %s round %d: petcnn unmeasured (its start-up varied by more than the "
                      "work took: use more --images), PyTorch %.1f img/s (%s)"
                      % (name, r + 1, theirs[0], theirs[1]))
                best_torch = max(best_torch, theirs)
                continue
            rate = (a.images - a.batch) / t
            print("   %s round %d: petcnn %.1f img/s, PyTorch %.1f img/s (%s)"
                  % (name, r + 1, rate, theirs[0], theirs[1]))
            best_ours, best_torch = max(best_ours, rate), max(best_torch, theirs)
        if not best_ours:
            print("%-13s petcnn unmeasured   PyTorch %7.1f img/s (%s)" % (name, best_torch[0], best_torch[1]))
            continue
        print("%-13s petcnn %7.1f img/s   PyTorch %7.1f img/s (%s)   ratio %.2fx"
              % (name, best_ours, best_torch[0], best_torch[1], best_ours / best_torch[0]))


if __name__ == "__main__":
    main()
