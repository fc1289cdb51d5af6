#!/usr/bin/python3
"""cnn-train and cnn-eval beside PyTorch on the seed network, on one machine, in one run.

Usage (Debian's /usr/bin/python3, which has numpy and torch):
  train.py run [--quick] [--rounds N] [--only eval224]... [--peak THREADS=GFLOPS]... [--fma-peak THREADS=GFLOPS]...
               [--isa avx2] [--bin DIR] [--work DIR]
      the whole comparison; prints a table (bench/run calls this); --only train, eval,
      eval32 (batch 32, cnn-eval's default) or run, or one at a size (eval224): those rows;
      --isa avx2: both sides held to AVX2 on an AVX-512 CPU, as an AVX2 machine of the same
      cores would run them (ours PETCNN_ISA=avx2; torch ATEN_CPU_CAPABILITY=avx2 and
      ONEDNN_MAX_CPU_ISA=AVX2, which the header's onednn line confirms)
  train.py data OUT SIZE N               random dataset stream (uint8 images, 2 classes)
  train.py torch-train DATA CKPT THREADS BATCH STEPS
  train.py torch-eval DATA CKPT THREADS BATCH
  train.py torch-run DATA CKPT THREADS BATCH EPOCHS OUT
      a whole run: EPOCHS passes over DATA, shuffled, a checkpoint to OUT at each epoch's
      end (torch.save of the model's and Adam's state, fsynced, renamed into place)
      PyTorch's side: the seed network with the weights of our checkpoint; prints one
      'step N' (train) or 'done N SECONDS' (eval: images, and seconds since the timed
      loop began) line per batch, flushed
  train.py torch-info THREADS            which kernels torch runs (op names, BLAS core)

Method. Every run is a child process whose stdout (and, for cnn-eval, its --progress line
on stderr) says when each batch is done; the driver timestamps those lines as they
arrive, or for eval takes the child's own clock from them: cnn-eval's progress line gives
images done and their rate since it began (so the seconds since), torch-eval prints its
seconds. An eval pass at 64x64 lasts well under a second, and on 2 cores busy with the
child's 2 threads the driver's reads lagged by up to a fifth of it: the first mark read
late, the last on time at exit, so the driver's clock made cnn-eval look up to 2.5x
faster than it was (a QUICK pass said 3524-4160 images/s at 64 where whole runs of 3000
images took 1.8 s). Start-up (importing torch, reading data, building or loading the model) and the
end (cnn-train writes its checkpoint) are outside the window: the rate is the images
done between the end of the warm-up batches and the last batch over the time between
them. So one run gives a steady-state rate, measured the same way for both sides. The "run"
rows time whole runs instead, from the process's start to its exit: start-up (for torch
the import), every epoch's checkpoint (ours --checkpoint-background; torch.save fsynced and
renamed, as crash-safe as ours) and the end, images x epochs over that wall time; under the
table, where our best whole run's time past its median step x steps went (its --profile)
and what those costs would come to over the seed's 400 epochs (run_costs). Runs
alternate, ours then theirs, for each configuration and round, so a load change on the
shared machine hits both; the table shows the best round of each (the least disturbed),
and every round is printed above it. Peak RSS is the child's ru_maxrss (wait4), i.e.
VmHWM: for torch it includes the Python interpreter and the torch libraries.

Every peer at its best: PyTorch runs with glibc's allocator tuned as a user who cares
runs it (TORCH_MALLOC below: no mmap per large tensor, no trimming, a 1 GiB top pad; on
the 2-core Xeon of issue 15 it trained 1.55x faster than with the defaults), with
torch.set_num_threads equal to our --threads, and with denormal numbers flushed to zero
(torch.set_flush_denormal), as our programs compute: this random data's near-certain
softmax outputs make gradients of ~1e-40, and on an Intel Xeon with them unflushed some
of PyTorch's steps at 224 took 2-4x the others (ours 3-4x).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

CONVS = [(3, 32), (32, 32), None, (32, 64), (64, 64), None]  # (cin, cout); None: pool 2x2
FC = 512
CLASSES = 2
# glibc malloc tuned for PyTorch: large tensors are not mmapped and unmapped every step
TORCH_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736",
                "MALLOC_TOP_PAD_": "1073741824"}


def flops(size, classes=CLASSES):
    """FLOP per image (forward, training step) of the seed network at size x size.

    A conv layer is h*w*cout*9*cin multiply-adds; fc1 (h/4*w/4*64)*512; softmax 512*K.
    Forward is 2 FLOP per multiply-add. A training step adds the weight gradient (as much as
    the forward) and the input gradient (as much again) of every layer except conv1_1, whose
    input gradient nobody needs: train = 3 * forward - 2 * conv1_1. Everything scales with
    h*w, so both are (size/224)^2 times the 224 figures. Bias, ReLU, pooling, dropout, the
    loss and Adam are O(activations + parameters) and left out."""
    h = w = size
    macs, first = [], None
    for layer in CONVS:
        if layer is None:
            h, w = (h + 1) // 2, (w + 1) // 2
            continue
        cin, cout = layer
        macs.append(h * w * cout * 9 * cin)
        if first is None:
            first = macs[-1]
    macs.append(h * w * 64 * FC)
    macs.append(FC * classes)
    fwd = 2 * sum(macs)
    return fwd, 3 * fwd - 2 * first, macs


# --------------------------------------------------------------------------- data


def write_data(path, size, n, seed=1):
    import numpy as np

    r = np.random.default_rng(seed)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, r.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
        np.save(f, r.integers(0, CLASSES, n).astype(np.int64))
        np.save(f, np.array(["samoyed", "shiba_inu"][:CLASSES]))
    os.rename(tmp, path)


def read_data(path):
    import numpy as np

    with open(path, "rb") as f:
        images, labels, classes = np.load(f), np.load(f), np.load(f)
    return images, labels, classes


# --------------------------------------------------------------------------- torch side


def torch_net(ckpt, size, classes):
    """The seed network in PyTorch (NCHW), weights from our checkpoint (HWIO, [in, out])."""
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1_1 = nn.Conv2d(3, 32, 3, padding=1)  # 3x3 stride 1 SAME: pad 1 each side
            self.conv1_2 = nn.Conv2d(32, 32, 3, padding=1)
            self.conv2_1 = nn.Conv2d(32, 64, 3, padding=1)
            self.conv2_2 = nn.Conv2d(64, 64, 3, padding=1)
            self.fc1 = nn.Linear(size // 4 * (size // 4) * 64, FC)
            self.softmax = nn.Linear(FC, classes)

        def forward(self, x, keep_conv=1.0, keep_fc=1.0):
            # 2x2/2 SAME pooling on even sizes pads nothing: plain max_pool2d
            x = F.relu(self.conv1_2(F.relu(self.conv1_1(x))))
            x = F.dropout(F.max_pool2d(x, 2), 1 - keep_conv, self.training)
            x = F.relu(self.conv2_2(F.relu(self.conv2_1(x))))
            x = F.dropout(F.max_pool2d(x, 2), 1 - keep_conv, self.training)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flatten in NHWC order, as ours
            x = F.dropout(F.relu(self.fc1(x)), 1 - keep_fc, self.training)
            return self.softmax(x)

    net = Net()
    z = np.load(ckpt)
    with torch.no_grad():
        for name, mod in net.named_children():
            wkey = next(k for k in z.files if k.startswith(name + "/weights"))
            bkey = next(k for k in z.files if k.startswith(name + "/biases"))
            w = torch.from_numpy(z[wkey])
            w = w.permute(3, 2, 0, 1) if w.dim() == 4 else w.t()
            mod.weight.copy_(w)
            mod.bias.copy_(torch.from_numpy(z[bkey]))
    return net


def torch_setup(threads):
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as ours: see the docstring
    return torch


def batch_tensor(torch, images, i, b):
    """uint8 NHWC images [i, i+b) as float NCHW in [0, 1]: the data phase of a step."""
    x = torch.from_numpy(images[i:i + b]).float().div_(255)
    return x.permute(0, 3, 1, 2).contiguous()


def torch_trainer(data, ckpt, threads):
    """torch, F, the data and the seed network with our checkpoint's weights under Adam."""
    torch = torch_setup(threads)
    import torch.nn.functional as F

    images, labels, classes = read_data(data)
    net = torch_net(ckpt, images.shape[1], len(classes))
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8)
    torch.manual_seed(1)
    return torch, F, images, labels, net, opt


def torch_step(F, net, opt, x, y):
    loss = F.cross_entropy(net(x, 0.2, 0.5), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss)


def torch_train(data, ckpt, threads, batch, steps):
    torch, F, images, labels, net, opt = torch_trainer(data, ckpt, threads)
    n = images.shape[0]
    for step in range(steps):
        i = step * batch % (n - batch + 1)
        loss = torch_step(F, net, opt, batch_tensor(torch, images, i, batch), torch.from_numpy(labels[i:i + batch]))
        print("step", step + 1, loss, flush=True)


def torch_run(data, ckpt, threads, batch, epochs, out):
    """A whole training run as a PyTorch user who wants crash-safe checkpoints writes it."""
    torch, F, images, labels, net, opt = torch_trainer(data, ckpt, threads)
    n = images.shape[0]
    for epoch in range(epochs):
        order = torch.randperm(n).numpy()
        for i in range(0, n - batch + 1, batch):
            idx = order[i:i + batch]
            x = torch.from_numpy(images[idx]).float().div_(255).permute(0, 3, 1, 2).contiguous()
            loss = torch_step(F, net, opt, x, torch.from_numpy(labels[idx]))
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        print("epoch", epoch + 1, loss, flush=True)


def torch_eval(data, ckpt, threads, batch):
    """Inference as a user who cares runs it: eager under inference_mode, or TorchScript
    frozen with optimize_for_inference (conv+ReLU fused, MKLDNN layouts), whichever is
    faster here on a few batches before the timed loop (its name is printed)."""
    torch = torch_setup(threads)

    images, labels, classes = read_data(data)
    net = torch_net(ckpt, images.shape[1], len(classes))
    net.eval()
    x0 = batch_tensor(torch, images, 0, min(batch, images.shape[0]))
    with torch.no_grad():
        jit = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x0)))
    best = None
    with torch.inference_mode():
        for name, f in (("eager", net), ("jit-optimized", jit)):
            f(x0)
            t0 = time.perf_counter()
            for _ in range(3):
                f(x0)
            t = time.perf_counter() - t0
            if best is None or t < best[0]:
                best = (t, name, f)
    print("variant", best[1], flush=True)
    f = best[2]
    correct = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, images.shape[0], batch):
            b = min(batch, images.shape[0] - i)
            probs = torch.softmax(f(batch_tensor(torch, images, i, b)), 1)
            correct += int((probs.argmax(1) == torch.from_numpy(labels[i:i + b])).sum())
            print("done", i + b, time.perf_counter() - t0, flush=True)
    print("accuracy", correct / images.shape[0], flush=True)


def torch_info(threads):
    """The kernels torch runs for this network: op names from its profiler over one
    training step, and the BLAS core (torch links Debian's OpenBLAS for Linear)."""
    import ctypes
    import numpy as np

    torch = torch_setup(threads)
    import torch.nn.functional as F

    with tempfile.TemporaryDirectory() as d:
        z = {}
        for name, shape in [("conv1_1/weights1_1", (3, 3, 3, 32)), ("conv1_2/weights1_2", (3, 3, 32, 32)),
                            ("conv2_1/weights2_1", (3, 3, 32, 64)), ("conv2_2/weights2_2", (3, 3, 64, 64)),
                            ("fc1/weights3_1", (16 * 16 * 64, FC)), ("softmax/weights3_2", (FC, CLASSES))]:
            z[name] = np.zeros(shape, np.float32) + 0.01
            z[name.split("/")[0] + "/biases" + name.split("weights")[1]] = np.zeros(shape[-1], np.float32)
        np.savez(os.path.join(d, "m.npz"), **z)
        net = torch_net(os.path.join(d, "m.npz"), 64, CLASSES)
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    x, y = torch.rand(10, 3, 64, 64), torch.zeros(10, dtype=torch.long)
    for _ in range(2):
        with torch.autograd.profiler.profile() as prof:
            loss = F.cross_entropy(net(x, 0.2, 0.5), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    print("torch", torch.__version__, "threads", torch.get_num_threads(),
          "mkldnn", torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
    print("ops", " ".join(e.key for e in ops[:8]))
    try:
        core = ctypes.CDLL("libopenblas.so.0").openblas_get_corename
        core.restype = ctypes.c_char_p
        print("openblas", core().decode())
    except OSError:
        print("openblas", "not loaded")


# --------------------------------------------------------------------------- driver


# --isa avx2: what holds each side to AVX2 (ATen's kernels, oneDNN's JIT; both take the
# widest the CPU has otherwise)
TORCH_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}


def child_env(threads, isa=None):
    """Our environment (OPENBLAS_CORETYPE and the like pass through untouched) with the
    thread count pinned for OpenMP and OpenBLAS, which torch uses for conv and Linear."""
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    env.update(TORCH_MALLOC)
    if isa == "avx2":
        env.update(TORCH_AVX2)
    return env


def ours_env(isa=None):
    return dict(os.environ, PETCNN_ISA=isa) if isa else dict(os.environ)


def timed(cmd, env, pattern, stream="stdout", clock=None):
    """Runs cmd, timestamps every match of pattern (group 1: a count of steps or images)
    on stdout or stderr, by the driver's clock or by clock(match), the child's seconds;
    returns ([(seconds, count)...], peak RSS in MiB, status)."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL)
    src = p.stdout if stream == "stdout" else p.stderr
    other = p.stderr if stream == "stdout" else p.stdout
    rx, marks, buf = re.compile(pattern.encode()), [], b""
    fd = src.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        t = time.monotonic()
        buf += chunk
        # progress lines end in \r redraws, metric lines in \n: split on both
        *done, buf = re.split(rb"[\r\n]", buf)
        for part in done:
            m = rx.search(part)
            if m:
                marks.append((clock(m) if clock else t, int(m.group(1))))
    if other is not None:
        other.read()
    _, status, ru = os.wait4(p.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return marks, ru.ru_maxrss / 1024, code


def whole(cmd, env, images):
    """Images per second of a whole run (process start to exit), its peak RSS in MiB and
    its stderr."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(cmd)}: exit {os.waitstatus_to_exitcode(status)}: {err[-500:]!r}")
    return images / wall, ru.ru_maxrss / 1024, err.decode(errors="replace")


NUM = r"(-?[0-9.]+)"
PAST = (r"the whole run past the median x steps, NUM s: start-up NUM, the first step NUM, checkpoints in "
        r"the loop NUM, waits for their staging buffer NUM, the steps beside a checkpoint's writing NUM, "
        r"the epochs' tests NUM, the logging \(test samples, images\) NUM, the other steps NUM, after "
        r"the last step NUM").replace("NUM", NUM)


def run_costs(err, epochs, seed_epochs=400):
    """Where a whole run's time past its median step x steps went (cnn-train --profile's
    breakdown), and what those costs would come to over the seed's 400 epochs: start-up, the
    first step and the end once a run; the checkpoints in the loop and the steps beside
    their writer once per checkpoint; the logging once per step; the other steps' spread
    past the median both ways, once (where it is the staging buffer faulting in beside the
    first steps) and once per epoch (where it is the host's noise). None if not found."""
    m = re.search(PAST, err)
    med = re.search(r"steady-state step \(the median\) ([0-9.]+) ms;.* x (\d+) steps", err)
    if not m or not med:
        return None
    past, start, first, ck, wait, beside, tests, logs, other, end = map(float, m.groups())
    step, steps = float(med[1]) / 1e3, int(med[2])
    n_ck = re.search(r"(\d+) checkpoints written in the background", err)
    n_ck = int(n_ck[1]) if n_ck else epochs - 1
    stage = re.search(r"the staging buffer, (\d+) MB, was faulted in over ([0-9.]+) s", err)
    once = start + first + wait + end + tests
    per_ck = (ck + beside) / n_ck if n_ck else 0
    spe = steps / epochs
    seed = [(once + o + (seed_epochs - 1) * per_ck + logs * seed_epochs / epochs) / (seed_epochs * spe * step)
            for o in (other, other * seed_epochs / epochs)]
    return (f"{100 * past / (steps * step):.1f}% past the median step x steps ({steps * step:.2f} s): "
            f"start-up {start:.2f} s, the first step {first:+.2f}, the other steps {other:+.2f}"
            + (f" (the staging buffer, {stage[1]} MB, faulting in beside them for {stage[2]} s)" if stage else "")
            + f", waits for it {wait:.2f}, the end {end:.2f}, {n_ck} checkpoints {per_ck:.2f} s each "
            f"(copies and the steps beside the writer), the logging {logs:.2f}; over the seed's "
            f"{seed_epochs} epochs that would be {100 * seed[0]:.1f}% (the other steps' spread once, as the "
            f"staging buffer's), {100 * seed[1]:.1f}% (as often as here)")


def rate(marks, warm, per):
    """Units per second between the first mark at or past warm and the last mark."""
    marks = [m for m in marks if m[1] >= warm]
    if len(marks) < 2 or marks[-1][0] <= marks[0][0]:
        return None
    return (marks[-1][1] - marks[0][1]) * per / (marks[-1][0] - marks[0][0])


class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = a.bin
        self.work = a.work
        self.me = os.path.abspath(__file__)
        self.py = sys.executable
        self.rows = []
        self.costs = {}  # size: [(images/s, run_costs) of each of our whole runs]
        self.peak, self.fma = {}, {}
        for src, dst in ((a.peak, self.peak), (a.fma_peak, self.fma)):
            for p in src:
                t, g = p.split("=")
                dst[int(t)] = float(g)

    def log(self, *msg):
        print(*msg, file=sys.stderr, flush=True)

    def data(self, size, n):
        path = os.path.join(self.work, f"data{size}_{n}.npy")
        if not os.path.exists(path):
            write_data(path, size, n)
        return path

    def ours_train(self, size, threads, steps, warm):
        data = self.data(size, (steps + 1) * self.a.batch)  # no epoch end (test pass, checkpoint) in the window
        ckpt = os.path.join(self.work, f"ours{size}.npz")
        cmd = [os.path.join(self.bin, "cnn-train"), "--train", data, "-o", ckpt, "-q",
               "--threads", str(threads), "--batch", str(self.a.batch), "--log-every", "1",
               "--stop-after", str(steps), "--epochs", "1000"]
        marks, rss, code = timed(cmd, ours_env(self.a.isa), r"^(\d+) train/Loss ")
        if code != 0:
            raise SystemExit(f"bench: {' '.join(cmd)}: exit {code}")
        return rate(marks, warm, self.a.batch), rss

    def theirs_train(self, size, threads, steps, warm):
        data = self.data(size, (steps + 1) * self.a.batch)
        cmd = [self.py, self.me, "torch-train", data, self.ckpt(size), str(threads), str(self.a.batch), str(steps)]
        marks, rss, code = timed(cmd, child_env(threads, self.a.isa), r"^step (\d+) ")
        if code != 0:
            raise SystemExit(f"bench: {' '.join(cmd)}: exit {code}")
        return rate(marks, warm, self.a.batch), rss

    def ours_run(self, size, threads, images, epochs):
        data = self.data(size, images)
        out = os.path.join(self.work, f"run{size}.npz")
        cmd = [os.path.join(self.bin, "cnn-train"), "--train", data, "-o", out, "-q",
               "--threads", str(threads), "--batch", str(self.a.batch), "--epochs", str(epochs),
               "--checkpoint-background", "--profile"]
        ips, rss, err = whole(cmd, ours_env(self.a.isa), images * epochs)
        self.costs.setdefault(size, []).append((ips, run_costs(err, epochs)))
        return ips, rss

    def theirs_run(self, size, threads, images, epochs):
        data = self.data(size, images)
        out = os.path.join(self.work, f"torchrun{size}.pt")
        cmd = [self.py, self.me, "torch-run", data, self.ckpt(size), str(threads), str(self.a.batch),
               str(epochs), out]
        return whole(cmd, child_env(threads, self.a.isa), images * epochs)[:2]

    def ckpt(self, size):
        """Weights for every run at this size: the checkpoint of our first training run
        (or a run of one step if there was none)."""
        path = os.path.join(self.work, f"weights{size}.npz")
        if not os.path.exists(path):
            ours = os.path.join(self.work, f"ours{size}.npz")
            if not os.path.exists(ours):
                self.ours_train(size, 2, 1, 0)
            os.rename(ours, path)
        return path

    def ours_eval(self, size, threads, n, warm, batch=None):
        data = self.data(size, n)
        cmd = [os.path.join(self.bin, "cnn-eval"), "-m", self.ckpt(size), "--progress",
               "--threads", str(threads), "--batch", str(batch or self.a.eval_batch), data]
        # "[###   ] DONE/TOTAL  RATE images/s": DONE / RATE is the seconds since it began
        marks, rss, code = timed(cmd, ours_env(self.a.isa), r"\] (\d+)/\d+  ([0-9.]+) [^/]*/s", "stderr",
                                 lambda m: int(m.group(1)) / max(float(m.group(2)), 1e-9))
        if code != 0:
            raise SystemExit(f"bench: {' '.join(cmd)}: exit {code}")
        return rate(marks, warm, 1), rss

    def theirs_eval(self, size, threads, n, warm, batch=None):
        data = self.data(size, n)
        cmd = [self.py, self.me, "torch-eval", data, self.ckpt(size), str(threads),
               str(batch or self.a.eval_batch)]
        marks, rss, code = timed(cmd, child_env(threads, self.a.isa), r"^done (\d+) ([0-9.]+)",
                                 clock=lambda m: float(m.group(2)))
        if code != 0:
            raise SystemExit(f"bench: {' '.join(cmd)}: exit {code}")
        return rate(marks, warm, 1), rss

    def ours_eval32(self, size, threads, n, warm):
        """Eval at batch 32, cnn-eval's default (torch at 32 too)."""
        return self.ours_eval(size, threads, n, warm, 32)

    def theirs_eval32(self, size, threads, n, warm):
        return self.theirs_eval(size, threads, n, warm, 32)

    def compare(self, what, size, threads, count, warm):
        """Ours then theirs, rounds times; keeps the best rate and the largest RSS."""
        best = {"ours": (0, 0), "torch": (0, 0)}
        for r in range(self.a.rounds):
            for side in ("ours", "torch"):
                fn = getattr(self, ("ours_" if side == "ours" else "theirs_") + what)
                ips, rss = fn(size, threads, count, warm)
                self.log(f"bench: {what} {size}x{size} threads {threads} round {r + 1} {side}: "
                         f"{ips or 0:.2f} images/s, peak RSS {rss:.0f} MiB")
                b = best[side]
                best[side] = (max(b[0], ips or 0), max(b[1], rss))
        self.rows.append((what, size, threads, best["ours"], best["torch"]))

    def table(self):
        out = []
        out.append(f"{'what':<6} {'size':>4} {'thr':>3} | {'ours img/s':>10} {'torch img/s':>11} "
                   f"{'ratio':>6} | {'ours GFLOP/s':>21} {'torch GFLOP/s':>21} | "
                   f"{'ours RSS':>9} {'torch RSS':>9}")
        out.append("-" * len(out[0]))
        for what, size, thr, (oi, orss), (ti, trss) in self.rows:
            fwd, train, _ = flops(size)
            per = (train if what in ("train", "run") else fwd) / 1e9
            peak, fma = self.peak.get(thr), self.fma.get(thr)

            def g(ips):
                s = f"{ips * per:6.1f}"
                s += f" ({100 * ips * per / peak:3.0f}%" if peak else " (  -%"
                return s + (f" {100 * ips * per / fma:3.0f}%)" if fma else "    -)")

            ratio = oi / ti if ti else float("nan")
            out.append(f"{what:<6} {size:>4} {thr:>3} | {oi:>10.2f} {ti:>11.2f} {ratio:>5.2f}x | "
                       f"{g(oi):>14} {g(ti):>14} | {orss:>6.0f} MiB {trss:>5.0f} MiB")
        return "\n".join(out)


def run(a):
    os.makedirs(a.work, exist_ok=True)
    b = Bench(a)
    fwd, train, macs = flops(224)
    print("FLOP per image (seed network, 2 classes): forward = 2 * MACs, train = 3 * forward - 2 * conv1_1")
    print("  MACs at 224: conv1_1 %d, conv1_2 %d, conv2_1 %d, conv2_2 %d, fc1 %d, softmax %d" % tuple(macs))
    print(f"  forward {fwd / 1e9:.3f} GFLOP, train {train / 1e9:.3f} GFLOP at 224; times (S/224)^2 at S")
    if a.isa:
        print(f"  --isa {a.isa}: ours PETCNN_ISA={a.isa}; torch " +
              " ".join(f"{k}={v}" for k, v in TORCH_AVX2.items()))
    info = subprocess.run([b.py, b.me, "torch-info", "2"], env=child_env(2, a.isa), capture_output=True, text=True)
    for line in info.stdout.splitlines():
        print("  " + line)
    onednn = subprocess.run([b.py, b.me, "torch-info", "1"], capture_output=True, text=True,
                            env=dict(child_env(1, a.isa), ONEDNN_VERBOSE="1", DNNL_VERBOSE="1"))
    isa = [ln for ln in onednn.stdout.splitlines() if ",isa:" in ln or "info,cpu,isa" in ln]
    if isa:
        print("  onednn " + isa[0].split(",")[-1])
    print(f"  load average before: {open('/proc/loadavg').read().split()[:3]}", flush=True)
    q = a.quick
    # (what, size, threads, steps or images, warm-up steps or images)
    plan = [("train", 224, 2, 5 if q else 10, 2)]
    if not q:
        plan += [("train", 224, 1, 6, 2), ("train", 128, 2, 24, 4), ("train", 128, 1, 16, 4)]
    plan += [("train", 64, 2, 30 if q else 60, 10)]
    if not q:
        plan += [("train", 64, 1, 40, 10)]
    plan += [("eval", 224, 2, 100 if q else 300, 20), ("eval", 64, 2, 1000 if q else 3000, 200)]
    plan += [("eval32", 224, 2, 128 if q else 320, 32)]
    # whole runs: (what, size, threads, images, epochs); the 224 is ~340 per epoch
    plan += [("run", 224, 2, 60 if q else 340, 2 if q else 3), ("run", 64, 2, 200 if q else 400, 3)]
    for what, size, thr, count, warm in plan:
        if not a.only or what in a.only or f"{what}{size}" in a.only:
            b.compare(what, size, thr, count, warm)
    print(f"  load average after: {open('/proc/loadavg').read().split()[:3]}")
    print()
    print(f"train: batch {a.batch}, Adam, keep 0.2/0.5; eval: batch {a.eval_batch} (eval32: 32), forward only; "
          f"run: whole runs, images x epochs / wall time from start to exit, a checkpoint "
          f"every epoch; best of {a.rounds} alternating round(s); ratio = ours / torch; "
          "GFLOP/s (share of the sgemm peak, of the FMA peak, at that thread count); "
          "torch with " + " ".join(f"{k}={v}" for k, v in TORCH_MALLOC.items()))
    print(b.table())
    for size, runs in sorted(b.costs.items(), reverse=True):
        ips, costs = max(runs, key=lambda r: r[0])
        print(f"ours, the whole run at {size} ({ips:.2f} images/s): {costs or 'no --profile breakdown'}")
    if not a.keep:
        shutil.rmtree(a.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description="cnn-train/cnn-eval beside PyTorch")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--quick", action="store_true")
    r.add_argument("--rounds", type=int, default=None)
    r.add_argument("--batch", type=int, default=10)
    r.add_argument("--eval-batch", type=int, default=10)
    r.add_argument("--only", action="append", default=[],
                   help="train, eval or run, alone or with a size (eval224): only those rows")
    r.add_argument("--peak", action="append", default=[], help="THREADS=GFLOPS from sgemm_peak")
    r.add_argument("--fma-peak", action="append", default=[], help="THREADS=GFLOPS from fma_peak")
    r.add_argument("--isa", choices=["avx2"], default=None,
                   help="hold both sides to AVX2 (an AVX2 machine's kernels on this CPU)")
    r.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bin"))
    r.add_argument("--work", default=None)
    r.add_argument("--keep", action="store_true", help="keep the work directory")
    d = sub.add_parser("data")
    d.add_argument("out")
    d.add_argument("size", type=int)
    d.add_argument("n", type=int)
    t = sub.add_parser("torch-train")
    for k in ("data", "ckpt"):
        t.add_argument(k)
    for k in ("threads", "batch", "steps"):
        t.add_argument(k, type=int)
    e = sub.add_parser("torch-eval")
    for k in ("data", "ckpt"):
        e.add_argument(k)
    for k in ("threads", "batch"):
        e.add_argument(k, type=int)
    w = sub.add_parser("torch-run")
    for k in ("data", "ckpt"):
        w.add_argument(k)
    for k in ("threads", "batch", "epochs"):
        w.add_argument(k, type=int)
    w.add_argument("out")
    i = sub.add_parser("torch-info")
    i.add_argument("threads", type=int)
    a = ap.parse_args()
    if a.cmd == "run":
        if a.rounds is None:
            a.rounds = 1 if a.quick else 3
        if a.work is None:
            a.work = tempfile.mkdtemp(prefix="petcnn-bench-train.")
        run(a)
    elif a.cmd == "data":
        write_data(a.out, a.size, a.n)
    elif a.cmd == "torch-train":
        torch_train(a.data, a.ckpt, a.threads, a.batch, a.steps)
    elif a.cmd == "torch-run":
        torch_run(a.data, a.ckpt, a.threads, a.batch, a.epochs, a.out)
    elif a.cmd == "torch-eval":
        torch_eval(a.data, a.ckpt, a.threads, a.batch)
    else:
        torch_info(a.threads)


if __name__ == "__main__":
    main()
