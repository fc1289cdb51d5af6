"""PyTorch's side of tests/cnn-convert.bats: a torchvision network (onnx_ref.nets: random
weights, randomised batch-norm statistics) exported to ONNX, uint8 images as a dataset
stream, and PyTorch's probabilities on them with the normalisation cnn-convert is given.

    convert_ref.py export NAME OUT.onnx DATA.npy NORM [dynamic]
        NAME: a torchvision network or tanh (a small one with an op we refuse)
        NORM: none (pixels / 255), imagenet, or imagenet-bgr (the network takes B, G, R)
        writes OUT.onnx, DATA.npy (images, labels, classes) and DATA.npy.probs.npy
    convert_ref.py compare PRED.tsv PROBS.npy TOL     cnn-eval's predictions against PyTorch's
"""
import sys

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def export(name, out, data, norm, dynamic):
    import torch
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from onnx_ref import nets

    if name == "tanh":
        # an op we do not run, in an otherwise plain image network
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(),
                                  torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(4, 6)).eval()
        shape = (1, 3, 16, 16)
    else:
        net, shape = nets(name)
    n, h, w = 3, shape[2], shape[3]
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    x = img.astype(np.float64) / 255
    if norm != "none":
        x = (x - MEAN) / STD  # the network's channel order: R, G, B, or B, G, R below
    if norm == "imagenet-bgr":
        # the same arrays given as B, G, R: the network sees channel 0 = blue
        x = ((img.astype(np.float64) / 255)[..., ::-1] - MEAN) / STD
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), dtype=torch.float32)
    with torch.no_grad():
        p = torch.softmax(net(xt), 1).double().numpy()
    kw = {}
    if dynamic:
        kw["dynamic_axes"] = {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n"}}
    torch.onnx.export(net, xt[:1], out, opset_version=13, input_names=["x"], output_names=["y"],
                      do_constant_folding=True, **kw)
    k = p.shape[1]
    with open(data, "wb") as f:
        np.save(f, img)
        np.save(f, np.arange(n, dtype=np.int64) % k)
        np.save(f, np.array(["c%d" % i for i in range(k)]))
    np.save(data + ".probs.npy", p)


def compare(pred, probs, tol):
    rows = [line.rstrip("\n").split("\t") for line in open(pred)][1:]
    got = np.array([[float(v) for v in r[3:]] for r in rows])
    want = np.load(probs)
    if got.shape != want.shape:
        raise SystemExit("shape %s, PyTorch's %s" % (got.shape, want.shape))
    d = np.abs(got - want).max()
    print("max |p - p_torch| = %.3g" % d)
    if not d <= tol:
        raise SystemExit("differs from PyTorch by %.3g > %g" % (d, tol))


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], len(sys.argv) > 6)
    else:
        compare(sys.argv[2], sys.argv[3], float(sys.argv[4]))
