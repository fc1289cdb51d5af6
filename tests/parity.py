# Parity with PyTorch, torch's half: for each case directory test_parity wrote, build the
# network from the checkpoint's own spec in torch (float64, NCHW), load our weights
# (HWIO -> OIHW), replay our dropout masks, pad SAME asymmetrically as TensorFlow does, and
# compare logits, loss and every gradient. Agreement: max |ours - torch| / max |torch| per
# tensor at most 1e-4. Usage: parity.py DIR...
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


def forward(spec, params, x, masks, keeps, train):
    h = torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2) / 255.0
    toks = spec.split()
    for i, tok in enumerate(toks):
        name, body = tok.split('=', 1) if '=' in tok else (None, tok)
        f = body.split(':')
        kind, opts = f[0], f[1:]
        last = i == len(toks) - 1
        if kind in ('conv', 'maxpool'):
            kh, kw = (int(v) for v in opts[0].split('x'))
            rest = opts[2:] if kind == 'conv' else opts[1:]
            stride = next((int(o[1:]) for o in rest if o[0] == 's' and o[1:].isdigit()), None)
            if stride is None:
                stride = 1 if kind == 'conv' else None
            sh, sw = (stride, stride) if stride else (kh, kw)
            valid = 'valid' in rest
            if not valid:
                t, b = same_pads(h.shape[2], kh, sh)
                l, r = same_pads(h.shape[3], kw, sw)
                h = F.pad(h, (l, r, t, b), value=0.0 if kind == 'conv' else -math.inf)
            if kind == 'conv':
                w = params[name + '/weights'].permute(3, 2, 0, 1)
                h = F.conv2d(h, w, params[name + '/biases'], stride=(sh, sw))
                if 'linear' not in rest:
                    h = F.relu(h)
            else:
                h = F.max_pool2d(h, (kh, kw), (sh, sw))
        elif kind == 'drop':
            if train:
                m = torch.tensor(masks[i], dtype=torch.float64)
                if h.dim() == 4:
                    m = m.permute(0, 3, 1, 2)
                else:
                    m = m.reshape(h.shape)
                h = h * m / keeps[opts[0]]
        elif kind == 'dense':
            if h.dim() == 4:
                h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # flatten as NHWC does
            h = h @ params[name + '/weights'] + params[name + '/biases']
            if not last and 'linear' not in opts[1:]:
                h = F.relu(h)
        else:
            raise SystemExit('unknown layer ' + kind)
    return h


def relerr(ours, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.abs(np.asarray(ours, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-12))


def check(d):
    m = np.load(d + '/model.npz')
    data = np.load(d + '/data.npz')
    spec = str(m['model/spec'][0])
    names = [k for k in m.files if '/weights' in k or '/biases' in k]
    params, byscope = {}, {}
    for k in names:
        t = torch.tensor(m[k], dtype=torch.float64, requires_grad=True)
        scope, var = k.split('/')
        byscope[scope + '/' + ('weights' if var.startswith('weights') else 'biases')] = t
        params[k] = t
    train = bool(data['train'])
    masks = {int(k.split('/')[1]): data[k] for k in data.files if k.startswith('mask/')}
    keeps = {'conv': float(data['keep_conv']), 'fc': float(data['keep_fc'])}
    x, labels = data['x'], torch.tensor(data['labels'])
    logits = forward(spec, byscope, x, masks, keeps, train)
    loss = F.cross_entropy(logits, labels)
    errs = {'logits': relerr(data['logits'], logits.detach()),
            'loss': relerr(data['loss'], loss.detach())}
    with torch.no_grad():
        errs['logits_eval'] = relerr(data['logits_eval'], forward(spec, byscope, x, masks, keeps, False))
    if train:
        loss.backward()
        for k in names:
            errs['grad/' + k] = relerr(data['grad/' + k], params[k].grad)
    bad = {k: v for k, v in errs.items() if not v <= TOL}
    print('%s: %d tensors, worst %s %.2e' % (d, len(errs), max(errs, key=errs.get), max(errs.values())))
    for k, v in bad.items():
        print('  %s: relative error %.3e > %g' % (k, v, TOL))
    return not bad


if __name__ == '__main__':
    torch.set_num_threads(2)
    ok = all([check(d) for d in sys.argv[1:]])
    sys.exit(0 if ok and len(sys.argv) > 1 else 1)
