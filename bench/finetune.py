#!/usr/bin/python3
"""Fine-tuning a pretrained network, the tutorial's transfer learning: cnn-train on
torchvision's ResNet-18 and MobileNetV2 (exported by torch.onnx.export, converted by
cnn-convert) with a new head, frozen below it (and ResNet-18 also below its last stage,
layer4), and each whole network trained (nothing frozen, the fine-tuning that follows a
new head's), beside PyTorch training the same.

Usage (Debian's /usr/bin/python3 with torch, torchvision, numpy):
  finetune.py [--bin DIR] [--threads N] [--batch N] [--steps N] [--rounds N]
              [--nets resnet18,mobilenet_v2] [--isa avx2] [--work DIR]

Method. Each step draws a batch of 224x224 images, flips each left-right with probability
one half, runs the frozen part and trains the rest with a new 37-class head (Adam, lr
1e-3, cross-entropy). Ours: `cnn-train --init-from NET.npz --freeze-below LAYER --augment
flip` (the flips change the features, so none are cached) and its --profile's median step.
PyTorch at its best, as a user who cares runs it: glibc's allocator tuned, denormals
flushed to zero (torch.set_flush_denormal, as ours compute), and the frozen
part run under no_grad by the fastest of eager, channels_last and TorchScript frozen with
optimize_for_inference (bench/onnx_infer.py's variants, each checked against eager), then
the trained part's forward, backward and Adam step (its batch norms in eval mode, with
their statistics fixed, as ours are folded into the convolutions; a whole network in
eager or channels_last, the faster); the median of --steps steps after two of warm-up. Rounds alternate ours then theirs, the best of each is reported, and the ratio is
ours / PyTorch's images per second. Random weights: speed does not depend on them.
"""
import argparse
import copy
import os
import re
import statistics
import subprocess
import sys
import time

CLASSES = 37


def ours(a, npz, below, data, out):
    r = subprocess.run([os.path.join(a.bin, "cnn-train"), "--init-from", npz]
                       + (["--freeze-below", below] if below else [])
                       + ["--augment", "flip", "--train", data, "-o", out, "-q", "--threads",
                          str(a.threads), "--batch", str(a.batch), "--stop-after", str(a.steps + 1),
                          "--profile"], check=True, capture_output=True, text=True)
    m = re.search(r"steady-state step \(the median\) ([0-9.]+) ms", r.stderr)
    if not m:
        sys.exit("finetune.py: no median step in cnn-train's --profile:\n" + r.stderr)
    return a.batch / (float(m.group(1)) / 1000)


def theirs(torch, variants, top, images, a):
    """The best variant's images per second (median step), and its name: the frozen part
    by each variant under no_grad, then top (a copy per variant) trained by Adam."""
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # as ours compute (bench/train.py says why)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    y = torch.arange(len(x)) % CLASSES
    g = torch.Generator().manual_seed(1)
    best = (0.0, "")
    for name, (f, last) in variants.items():
        head = copy.deepcopy(top).to(memory_format=torch.channels_last if last
                                     else torch.contiguous_format)
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        times = []
        for s in range(a.steps + 2):
            t0 = time.perf_counter()
            i = s * a.batch % (len(x) - a.batch + 1)
            xb, yb = x[i:i + a.batch].clone(), y[i:i + a.batch]
            flip = torch.rand(a.batch, generator=g) < 0.5
            xb[flip] = xb[flip].flip(3)
            if last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                feat = f(xb)
            loss = torch.nn.functional.cross_entropy(head(feat), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if s >= 2:
                times.append(time.perf_counter() - t0)
        best = max(best, (a.batch / statistics.median(times), name))
    return best


def split(torch, name, net, stage):
    """(the frozen part, the trained part with a new 37-class head, our --freeze-below;
    stage "all": nothing frozen, None)."""
    if stage == "all":
        if name == "resnet18":
            net.fc = torch.nn.Linear(net.fc.in_features, CLASSES)
        else:
            net.classifier[1] = torch.nn.Linear(net.classifier[1].in_features, CLASSES)
        return torch.nn.Identity(), net.eval(), None
    if name == "resnet18":
        head = torch.nn.Linear(net.fc.in_features, CLASSES)
        if stage == "head":
            net.fc = torch.nn.Identity()
            return net, head, "fc_Gemm"
        base = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1,
                                   net.layer2, net.layer3)
        top = torch.nn.Sequential(net.layer4, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head)
        return base.eval(), top.eval(), "layer4_layer4_0_conv1_Conv"
    head = torch.nn.Linear(net.classifier[1].in_features, CLASSES)
    net.classifier[1] = torch.nn.Identity()
    return net, head, "classifier_classifier_1_Gemm"


def main():
    ap = argparse.ArgumentParser()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import onnx_infer as oi
    oi.bench_args(ap)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    oi.torch_env(a)
    import numpy as np
    import torch

    work = oi.work_dir(a, "finetune")
    data = os.path.join(work, "ft.npy")
    oi.dataset(data, 8 * a.batch, 224, CLASSES)
    images = np.load(data)
    print("== fine-tuning at 224 (new heads, ResNet-18 from layer4, whole networks; --augment "
          "flip), batch %d, %d threads; "
          "CPU: %s%s" % (a.batch, a.threads, oi.cpu_name(),
                         "; both sides held to AVX2" if a.isa else ""))
    for name in a.nets.split(","):
        net = oi.network(name)
        npz = oi.export(net, name, work, a.bin)
        for stage in (["head", "layer4", "all"] if name == "resnet18" else ["head", "all"]):
            base, top, below = split(torch, name, oi.network(name), stage)
            # nothing frozen: the whole network trained, in eager and channels_last
            variants = ({"eager": (base, False), "channels_last": (base, True)} if stage == "all"
                        else oi.torch_variants(base, a.batch, features=True))
            what = "%s %s" % (name, {"head": "new head", "layer4": "layer4 + new head",
                                     "all": "whole network"}[stage])
            best_ours, best_torch = 0.0, (0.0, "")
            for r in range(a.rounds):
                rate = ours(a, npz, below, data, os.path.join(work, name + "-ft.npz"))
                th = theirs(torch, variants, top, images, a)
                print("   %s round %d: petcnn %.1f img/s, PyTorch %.1f img/s (%s)"
                      % (what, r + 1, rate, th[0], th[1]))
                best_ours, best_torch = max(best_ours, rate), max(best_torch, th)
            print("%-27s petcnn %7.1f img/s   PyTorch %7.1f img/s (%s)   ratio %.2fx"
                  % (what, best_ours, best_torch[0], best_torch[1], best_ours / best_torch[0]))


if __name__ == "__main__":
    main()
