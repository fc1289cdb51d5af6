"""PyTorch's side of tests/cnn-apply-explain.bats: Grad-CAM, saliency and occlusion computed
in float64 from a checkpoint's own spec and weights (a twin built here from the spec
grammar: conv, maxpool with TensorFlow's SAME, drop as identity, dense, add, concat, gap,
relu; HWIO weights to OIHW, NHWC flattening before a dense layer), with torch.autograd for
the gradients and F.interpolate for Grad-CAM's upsampling.

    explain_ref.py MODEL.npz DATA.npy GOT.npy OP TARGET [ARGS]
        OP gradcam [LAYER [noup]] | saliency | occlusion P S
        TARGET pred, label, a class name or an index

Compares GOT.npy (cnn-apply's f4 [N, H', W', 1]) with the reference image by image:
max |got - want| / max |want| (the image's map; the whole batch's where one map is all 0)
at most TOL = 1e-4. Prints the worst relative difference; exit 1 if it is over.
"""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-4


def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class Twin:
    def __init__(self, path):
        z = np.load(path)
        self.spec = str(z["model/spec"][0])
        self.classes = [str(c) for c in z["classes"]] if "classes" in z.files else None
        self.mean = z["model/mean"].astype(np.float64) if "model/mean" in z.files else np.zeros(3)
        self.std = z["model/std"].astype(np.float64) if "model/std" in z.files else np.ones(3)
        self.p = {k: torch.from_numpy(z[k].astype(np.float64)) for k in z.files
                  if "/weights" in k or "/biases" in k}
        self.toks = self.spec.split()

    def param(self, name, kind):
        return next(v for k, v in self.p.items() if k.startswith(name + "/" + kind))

    def normalise(self, img):
        x = torch.from_numpy(img.astype(np.float64) / 255.0)
        return ((x - torch.from_numpy(self.mean)) / torch.from_numpy(self.std)).permute(0, 3, 1, 2)

    def near_ties(self, h, kh, kw, sh, sw):
        """Marks the images with a max-pool window whose two largest (positive) values are
        within 1e-5 of each other: which wins is float32 rounding's call (the summation order),
        and a gradient through the window goes to one pixel or the other."""
        n, c = h.shape[:2]
        win = F.unfold(h, (kh, kw), stride=(sh, sw)).reshape(n, c, kh * kw, -1)
        top = win.topk(2, dim=2).values
        near = (top[:, :, 0] > 0) & (top[:, :, 0] - top[:, :, 1] < 1e-5 * top[:, :, 0])
        self.tied |= near.flatten(1).any(1)

    def forward(self, x):
        """x NCHW normalised -> (logits, {layer name: output})"""
        outs, prev = {"input": x}, x
        self.tied = torch.zeros(x.shape[0], dtype=torch.bool)  # near_ties: this call's
        for i, tok in enumerate(self.toks):
            name, body = tok.split("=", 1) if "=" in tok else ("_%d" % i, tok)
            body, _, srcs = body.partition("@")
            ins = [outs[s] for s in srcs.split(",")] if srcs else [prev]
            f = body.split(":")
            kind, opts = f[0], f[1:]
            last = i == len(self.toks) - 1
            h = ins[0]
            if kind in ("conv", "maxpool"):
                kh, kw = (int(v) for v in opts[0].split("x"))
                rest = opts[2:] if kind == "conv" else opts[1:]
                st = next((int(o[1:]) for o in rest if o[0] == "s" and o[1:].isdigit()), None)
                sh, sw = (st, st) if st else ((1, 1) if kind == "conv" else (kh, kw))
                if "valid" not in rest:
                    t, b = same_pads(h.shape[2], kh, sh)
                    l, r = same_pads(h.shape[3], kw, sw)
                    h = F.pad(h, (l, r, t, b), value=0.0 if kind == "conv" else -math.inf)
                if kind == "conv":
                    h = F.conv2d(h, self.param(name, "weights").permute(3, 2, 0, 1),
                                 self.param(name, "biases"), stride=(sh, sw))
                    if ("relu" in rest) or (not last and "linear" not in rest):
                        h = F.relu(h)
                else:
                    self.near_ties(h.detach(), kh, kw, sh, sw)
                    h = F.max_pool2d(h, (kh, kw), (sh, sw))
            elif kind == "drop":
                pass
            elif kind == "dense":
                if h.dim() == 4:
                    h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
                h = h @ self.param(name, "weights") + self.param(name, "biases")
                if ("relu" in opts[1:]) or (not last and "linear" not in opts[1:]):
                    h = F.relu(h)
            elif kind == "add":
                h = ins[0] + ins[1]
                if "relu" in opts:
                    h = F.relu(h)
            elif kind == "concat":
                h = torch.cat(ins, 1)
            elif kind == "gap":
                h = h.mean(dim=(2, 3), keepdim=True)
            elif kind == "relu":
                h = F.relu(h)
            else:
                raise SystemExit("explain_ref: layer kind %s not in the twin" % kind)
            outs[name] = h
            prev = h
        return prev.reshape(prev.shape[0], -1), outs


def targets(twin, target, logits, labels):
    n = logits.shape[0]
    if target == "pred":
        return logits.argmax(1).tolist()
    if target == "label":
        return [int(v) for v in labels]
    if twin.classes and target in twin.classes:
        return [twin.classes.index(target)] * n
    return [int(target)] * n


def gradcam(twin, img, target, labels, layer, upsample):
    x = twin.normalise(img).requires_grad_(True)  # so that every layer's output has a grad_fn
    logits, outs = twin.forward(x)
    a = outs[layer]
    cls = targets(twin, target, logits.detach(), labels)
    sel = logits[torch.arange(len(cls)), torch.tensor(cls)].sum()
    (g,) = torch.autograd.grad(sel, a)
    cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    if upsample:
        cam = F.interpolate(cam, size=img.shape[1:3], mode="bilinear", align_corners=False)
    return cam.detach().permute(0, 2, 3, 1).numpy()


def saliency(twin, img, target, labels):
    x = twin.normalise(img).requires_grad_(True)
    logits, _ = twin.forward(x)
    cls = targets(twin, target, logits.detach(), labels)
    logits[torch.arange(len(cls)), torch.tensor(cls)].sum().backward()
    return x.grad.abs().amax(1, keepdim=True).permute(0, 2, 3, 1).numpy()


def occlusion(twin, img, target, labels, p, s):
    with torch.no_grad():
        logits, _ = twin.forward(twin.normalise(img))
        cls = targets(twin, target, logits, labels)
        n, h, w, _ = img.shape
        oh, ow = -(-h // s), -(-w // s)
        out = np.zeros((n, oh, ow, 1))
        for b in range(n):
            copies = np.repeat(img[b:b + 1], oh * ow, 0)
            for i in range(oh):
                for j in range(ow):
                    copies[i * ow + j, i * s:i * s + p, j * s:j * s + p] = 128
            lg, _ = twin.forward(twin.normalise(copies))
            out[b, :, :, 0] = F.softmax(lg, 1)[:, cls[b]].reshape(oh, ow).numpy()
    return out


def main():
    torch.set_num_threads(1)
    model, data, got_path, op, target = sys.argv[1:6]
    args = sys.argv[6:]
    twin = Twin(model)
    f = open(data, "rb")
    img = np.load(f)
    try:
        labels = np.load(f)
    except (ValueError, EOFError):
        labels = None
    if op == "gradcam":
        layer = args[0]
        want = gradcam(twin, img, target, labels, layer, not (len(args) > 1 and args[1] == "noup"))
    elif op == "saliency":
        want = saliency(twin, img, target, labels)
    else:
        want = occlusion(twin, img, target, labels, int(args[0]), int(args[1]))
    got = np.load(got_path)
    if got.dtype != np.float32 or got.shape != want.shape:
        print("FAIL %s: got %s %s, want %s" % (op, got.dtype, got.shape, want.shape))
        sys.exit(1)
    whole = max(float(np.abs(want).max()), 1e-30)
    worst = 0.0
    # gradients through a max-pool near-tie are rounding's call: those images are left out
    # (said), unless that would leave none
    tied = getattr(twin, "tied", None)
    skip = [] if op == "occlusion" or tied is None or bool(tied.all()) else tied.nonzero().flatten().tolist()
    for b in range(want.shape[0]):
        if b in skip:
            continue
        scale = float(np.abs(want[b]).max()) or whole
        worst = max(worst, float(np.abs(got[b] - want[b]).max()) / scale)
    print("%s %s %s: %d maps, max relative difference %.2e (tol %g)%s"
          % ("ok" if worst <= TOL else "FAIL", op, target, want.shape[0], worst, TOL,
             "; left out, a max-pool window's top two within 1e-5: image(s) %s" % skip if skip else ""))
    sys.exit(0 if worst <= TOL else 1)


if __name__ == "__main__":
    main()
