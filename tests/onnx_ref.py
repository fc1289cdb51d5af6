"""The independent check of onnx_import (tests/onnx.bats): PyTorch builds and exports a
network to ONNX; our importer turns it into a spec and NHWC parameters; a small NumPy
interpreter of the spec grammar (float64, written from the grammar, not from our C) runs them
and must give PyTorch's output.

    onnx_ref.py export NAME OUT.onnx          writes the network and OUT.onnx.{x,y}.npy
                                              (NAME pad*: a graph made by onnx.helper)
    onnx_ref.py run SPEC.txt PARAMS.npz X.npy Y.npy TOL
"""
import sys

import numpy as np


def nets(name):
    import torch
    import torch.nn as nn

    torch.manual_seed(1)

    class Res(nn.Module):
        # conv+bn+relu, ceil max pool, depthwise conv+bn, residual add, 1x1 conv, avg pool
        # with count_include_pad, flatten before a linear (the row permutation), ReLU6, linear
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.b1 = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
            self.b2 = nn.BatchNorm2d(8)
            self.pw = nn.Conv2d(8, 16, 1)
            self.avg = nn.AvgPool2d(2, 2, padding=1, count_include_pad=False)
            self.fc1 = nn.Linear(16 * 4 * 5, 10)
            self.fc2 = nn.Linear(10, 5)

        def forward(self, x):
            x = self.pool(torch.relu(self.b1(self.c1(x))))
            x = torch.relu(x + self.b2(self.dw(x)))
            x = self.avg(self.pw(x))
            x = torch.flatten(x, 1)
            return self.fc2(torch.clamp(self.fc1(x), 0, 6))

    class Cat(nn.Module):
        # two branches concatenated, LeakyReLU, an average pool without the pads counted, a
        # batch norm that cannot be folded, global average pool, dropout (eval), linear.
        # (torch exports LocalResponseNorm as a decomposition, not ONNX's LRN.)
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(3, 6, 5, padding=2)
            self.avg = nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)
            self.bn = nn.BatchNorm2d(10)
            self.drop = nn.Dropout(0.5)
            self.fc = nn.Linear(10, 7)

        def forward(self, x):
            x = torch.cat([self.a(x), self.b(x)], 1)
            x = nn.functional.leaky_relu(x, 0.2)
            x = self.bn(self.avg(x))  # bn after a pool: a bn layer, not folded
            x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.fc(self.drop(x))

    class Incl(nn.Module):
        # average pools that count their pads (torch's default): torch writes a Pad of
        # zeros and an AveragePool without pads, which the importer folds back into one
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 5, 3)
            self.a1 = nn.AvgPool2d(3, 2, padding=1)
            self.a2 = nn.AvgPool2d(3, 1, padding=1, ceil_mode=True)  # ceil changes nothing
            self.fc = nn.Linear(5 * 6 * 7, 4)

        def forward(self, x):
            x = self.a2(self.a1(torch.relu(self.c(x))))
            return self.fc(torch.flatten(x, 1))

    if name == "incl":
        net, shape = Incl(), (2, 3, 13, 15)
    elif name == "res":
        net, shape = Res(), (2, 3, 25, 27)
    elif name == "cat":
        net, shape = Cat(), (2, 3, 15, 13)
    else:
        import torchvision
        if name == "inception_v3":
            # 75x75 at least; its pools count their pads (a Pad and an AveragePool in ONNX)
            net = torchvision.models.inception_v3(num_classes=6, aux_logits=False, init_weights=False)
            shape = (1, 3, 96, 96)
        else:
            # NAME-SIZE: at SIZE x SIZE (MobileNetV2 at 160: its early maps big enough for
            # model_lean's bands)
            name, _, size = name.partition("-")
            size = int(size) if size else 64
            net, shape = getattr(torchvision.models, name)(num_classes=6), (1, 3, size, size)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return net.eval(), shape


def export(name, out):
    import torch

    net, shape = nets(name)
    x = torch.rand(shape)
    with torch.no_grad():
        y = net(x)
    torch.onnx.export(net, x, out, opset_version=13, input_names=["x"], output_names=["y"],
                      do_constant_folding=True)
    np.save(out + ".x.npy", x.numpy())
    np.save(out + ".y.npy", y.numpy())


# ---- the spec interpreter: NHWC float64 ----

def pad4(x, p, value):
    t, l, b, r = p
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def window_opts(opts, kh, kw, stride_default):
    s, p, ceil, incl, groups = stride_default, (0, 0, 0, 0), False, False, 1
    for o in opts:
        if o.startswith("s"):
            v = o[1:].split("x")
            s = (int(v[0]), int(v[-1]))
        elif o.startswith("p"):
            p = tuple(int(v) for v in o[1:].split(","))
        elif o == "valid":
            p = (0, 0, 0, 0)
        elif o == "same":
            raise SystemExit("onnx_ref: :same is not expected from the importer")
        elif o == "ceil":
            ceil = True
        elif o == "incl":
            incl = True
        elif o.startswith("g"):
            groups = int(o[1:])
    return s, p, ceil, incl, groups


def out_size(n, k, s, pa, pb, ceil):
    span = n + pa + pb - k
    o = (-(-span // s) if ceil else span // s) + 1
    if ceil and (o - 1) * s >= n + pa:
        o -= 1
    return o


def windows(x, kh, kw, s, p, ceil, value):
    B, H, W, C = x.shape
    oh, ow = out_size(H, kh, s[0], p[0], p[2], ceil), out_size(W, kw, s[1], p[1], p[3], ceil)
    extra_h = max(0, (oh - 1) * s[0] + kh - (H + p[0] + p[2]))
    extra_w = max(0, (ow - 1) * s[1] + kw - (W + p[1] + p[3]))
    xp = pad4(x, (p[0], p[1], p[2] + extra_h, p[3] + extra_w), value)
    return xp, oh, ow


def conv(x, w, b, opts):
    kh, kw, cig, cout = w.shape
    s, p, _, _, g = window_opts(opts, kh, kw, (1, 1))
    xp, oh, ow = windows(x, kh, kw, s, p, False, 0.0)
    B = x.shape[0]
    y = np.zeros((B, oh, ow, cout))
    cog = cout // g
    for gi in range(g):
        xs = xp[..., gi * cig:(gi + 1) * cig]
        ws = w[..., gi * cog:(gi + 1) * cog]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i:i + s[0] * oh:s[0], j:j + s[1] * ow:s[1], :]
                y[..., gi * cog:(gi + 1) * cog] += patch @ ws[i, j]
    return y + b


def pool(x, kind, kh, kw, opts):
    s, p, ceil, incl, _ = window_opts(opts, kh, kw, (kh, kw))
    B, H, W, C = x.shape
    if kind == "maxpool":
        xp, oh, ow = windows(x, kh, kw, s, p, ceil, -np.inf)
        return np.stack([np.stack([xp[:, i * s[0]:i * s[0] + kh, j * s[1]:j * s[1] + kw].max(axis=(1, 2))
                                   for j in range(ow)], 1) for i in range(oh)], 1)
    xp, oh, ow = windows(x, kh, kw, s, p, ceil, 0.0)
    ones = np.ones((1, H, W, 1))
    # count_include_pad counts the pads but not what ceil adds past them (PyTorch, ONNX)
    cnt = pad4(ones, p, 1.0 if incl else 0.0)
    cnt = np.pad(cnt, ((0, 0), (0, xp.shape[1] - cnt.shape[1]), (0, xp.shape[2] - cnt.shape[2]), (0, 0)))
    y = np.zeros((B, oh, ow, C))
    for i in range(oh):
        for j in range(ow):
            sl = (slice(None), slice(i * s[0], i * s[0] + kh), slice(j * s[1], j * s[1] + kw))
            y[:, i, j] = xp[sl].sum(axis=(1, 2)) / cnt[sl].sum(axis=(1, 2))
    return y


def lrn(x, size, alpha, beta, bias):
    C = x.shape[-1]
    sq = np.zeros_like(x)
    for c in range(C):
        lo, hi = max(0, c - (size - 1) // 2), min(C - 1, c + -(-(size - 1) // 2))
        sq[..., c] = (x[..., lo:hi + 1] ** 2).sum(-1)
    return x * (bias + alpha / size * sq) ** -beta


def run(spec, params, x):
    outs = {"input": x.transpose(0, 2, 3, 1) if x.ndim == 4 else x[:, None, None, :]}
    prev = "input"
    for tok in spec.split():
        ins = None
        if "@" in tok:
            tok, ins = tok.split("@")
            ins = ins.split(",")
        name, kind = tok.split("=")
        parts = kind.split(":")
        kind, opts = parts[0], parts[1:]
        a = [outs[i] for i in (ins or [prev])]
        relu = "relu" in opts
        if kind == "conv":
            y = conv(a[0], params[name + "/" + [k for k in params_of(params, name) if "weights" in k][0]],
                     params[name + "/" + [k for k in params_of(params, name) if "biases" in k][0]], opts[2:])
        elif kind in ("maxpool", "avgpool"):
            kh, kw = (int(v) for v in opts[0].split("x"))
            y = pool(a[0], kind, kh, kw, opts[1:])
        elif kind == "gap":
            y = a[0].mean(axis=(1, 2), keepdims=True)
        elif kind == "dense":
            w = params[name + "/" + [k for k in params_of(params, name) if "weights" in k][0]]
            b = params[name + "/" + [k for k in params_of(params, name) if "biases" in k][0]]
            y = (a[0].reshape(a[0].shape[0], -1) @ w + b)[:, None, None, :]
        elif kind == "add":
            y = a[0] + a[1]
        elif kind == "concat":
            y = np.concatenate(a, -1)
        elif kind == "relu":
            y, relu = a[0], True
        elif kind == "clip":
            y = np.clip(a[0], float(opts[0]), float(opts[1]))
        elif kind == "leaky":
            y = np.where(a[0] > 0, a[0], a[0] * float(opts[0]))
        elif kind == "bn":
            y = a[0] * params[name + "/scale"] + params[name + "/shift"]
        elif kind == "lrn":
            y = lrn(a[0], int(opts[0]), float(opts[1]), float(opts[2]), float(opts[3]))
        else:
            raise SystemExit("onnx_ref: unknown kind " + kind)
        if relu:
            y = np.maximum(y, 0)
        if "relu6" in opts:
            y = np.clip(y, 0, 6)
        outs[name], prev = y, name
    return outs[prev]


def params_of(params, name):
    return [k.split("/", 1)[1] for k in params if k.startswith(name + "/")]


def pad_graph(kind, out):
    """Graphs torch does not write but other exporters do, made with onnx.helper: a Pad
    of zeros (opset 13, pads as an initializer) between a Conv and a pool. kind: padmax
    (Conv, Relu, Pad, MaxPool: zeros never win over a ReLU's output), padmaxneg (no Relu:
    refused), padrelu (a Relu reads the Pad: refused), padconv (Pad, Conv)."""
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    pads = np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)  # N, C, H, W begins then ends
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(pads, "pads")]
    t = torch.tensor(x)
    if kind == "padconv":
        nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]),
                 helper.make_node("Conv", ["p", "w", "b"], ["y"], pads=[1, 0, 0, 1])]
        tp = torch.nn.functional.pad(t, (2, 1, 1, 2))
        y = torch.nn.functional.conv2d(torch.nn.functional.pad(tp, (0, 1, 1, 0)), torch.tensor(w),
                                       torch.tensor(b))
    else:
        c = torch.nn.functional.conv2d(t, torch.tensor(w), torch.tensor(b), padding=1)
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])]
        src = "c"
        if kind != "padmaxneg":
            nodes.append(helper.make_node("Relu", ["c"], ["r"]))
            src, c = "r", torch.relu(c)
        nodes.append(helper.make_node("Pad", [src, "pads"], ["p"]))
        if kind == "padrelu":
            nodes.append(helper.make_node("Relu", ["p"], ["y"]))
            y = c
        else:
            nodes.append(helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2]))
            y = torch.nn.functional.max_pool2d(torch.nn.functional.pad(c, (2, 1, 1, 2)), 3, 2)
    g = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), out)
    np.save(out + ".x.npy", x)
    np.save(out + ".y.npy", y.permute(0, 2, 3, 1).numpy())  # run's output is NHWC


def main():
    if sys.argv[1] == "export" and sys.argv[2].startswith("pad"):
        pad_graph(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3])
        return
    spec = open(sys.argv[2]).read().split("\n")[0]
    z = np.load(sys.argv[3])
    params = {k: z[k].astype(np.float64) for k in z.files}
    x, y = np.load(sys.argv[4]).astype(np.float64), np.load(sys.argv[5]).astype(np.float64)
    got = run(spec, params, x)
    got = got.reshape(y.shape) if got.size == y.size else got
    if got.shape != y.shape:
        raise SystemExit(f"onnx_ref: shape {got.shape}, PyTorch {y.shape}")
    err = np.abs(got - y).max() / max(1.0, np.abs(y).max())
    print(f"max relative difference {err:.3g}")
    if not err <= float(sys.argv[6]):
        raise SystemExit(f"onnx_ref: differs from PyTorch by {err:.3g} > {sys.argv[6]}")


if __name__ == "__main__":
    main()
