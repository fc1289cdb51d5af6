"""The other half of tests/onnx-export.bats: what test_onnx_export wrote into DIR, checked by
python3-onnx (checker, strict shape inference against our layer shapes) and run by OpenCV's
dnn (Debian's python3-opencv), whose probabilities must equal ours to 1e-4.
    onnx_export.py DIR    prints a line per case; exit 1 on any failure."""
import sys

import cv2
import numpy as np
import onnx
import onnx.shape_inference

TOL = 1e-4


def dims(vi):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in vi.type.tensor_type.shape.dim]


def check_shapes(model, shapes_path):
    """Every layer value's inferred shape is ours (C, H, W; a 2-D value is [N, C])."""
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    got = {vi.name: dims(vi) for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    bad = []
    n = 0
    with open(shapes_path) as f:
        for line in f:
            name, c, h, w = line.split()
            c, h, w = int(c), int(h), int(w)
            d = got.get(name)
            want = [c] if d is not None and len(d) == 2 else [c, h, w]
            if d is None or d[0] != "N" or d[1:] != want or (len(d) == 2 and (h, w) != (1, 1)):
                bad.append(f"{name}: onnx infers {d}, ours {c}x{h}x{w}")
            n += 1
    return n, bad


def main(d):
    images = np.load(f"{d}/images.npy")                 # uint8 [B, H, W, 3] RGB
    blob = np.ascontiguousarray(images.transpose(0, 3, 1, 2).astype(np.float32))
    failed = 0
    with open(f"{d}/cases") as f:
        cases = [line.split() for line in f if line.strip()]
    for name, numeric in cases:
        path = f"{d}/{name}.onnx"
        model = onnx.load(path)
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # the checker's own exception types vary by version
            print(f"{name}: onnx.checker refuses it: {e}")
            failed += 1
            continue
        n, bad = check_shapes(model, f"{d}/{name}.shapes")
        if bad:
            print(f"{name}: shape inference differs: " + "; ".join(bad))
            failed += 1
            continue
        try:
            net = cv2.dnn.readNetFromONNX(path)
            net.setInput(blob)
            theirs = net.forward()
        except cv2.error as e:
            print(f"{name}: OpenCV cannot run it: {str(e).strip().splitlines()[-1]}")
            failed += 1
            continue
        ours = np.load(f"{d}/{name}.probs.npy")
        if theirs.shape != ours.shape:
            print(f"{name}: OpenCV gives shape {theirs.shape}, ours {ours.shape}")
            failed += 1
            continue
        diff = float(np.abs(theirs.astype(np.float64) - ours).max())
        if numeric == "1":
            ok = diff <= TOL
            print(f"{name}: checker ok, {n} shapes ok, OpenCV max abs diff {diff:.3g}"
                  f"{'' if ok else f' > {TOL}: FAIL'}")
            failed += not ok
        else:
            print(f"{name}: checker ok, {n} shapes ok, OpenCV runs it ({theirs.shape})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
