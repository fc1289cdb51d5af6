#!/bin/sh
# Where a cnn-train step goes, per phase and per layer, at SIZE (default 224), batch 10.
# Usage: bench/profile.sh [SIZE] [THREADS] [STEPS]   (root: uprobes; needs perf, python3)
#
# Method: uprobes (perf probe) on entry and return of the engine's public functions
# (model_forward/backward, every nn_* layer call, optim_adam_step, dataset_gather) give
# the exact wall time of every call; calls are named by their order within the step (the
# default spec calls conv forward for conv1_1, conv1_2, conv2_1, conv2_2, backward in the
# reverse order, and so on). A second run samples cpu-clock (the VM has no hardware
# counters) for the hot symbols: sgemm kernels, im2col, Adam's loop. The first 2 steps are
# left out (first touch of the buffers); a probe hit costs a few microseconds.
set -eu

SIZE=${1:-224}
THREADS=${2:-2}
STEPS=${3:-8}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PETCNN_BIN:-$TOP/bin}
PY=${PETCNN_PYTHON:-/usr/bin/python3}
G=petcnnbench
"$TOP/scripts/need" perf
W=$(mktemp -d "${TMPDIR:-/tmp}/petcnn-profile.XXXXXX")
cleanup() {
	perf probe -q -d "$G:*" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT INT TERM

cp "$BIN/cnn-train" "$W/cnn-train" # probes are on a private copy: nobody else's run is traced
FUNCS="model_forward model_backward optim_adam_step dataset_gather conv2d_forward
conv2d_backward dense_forward dense_backward maxpool_forward maxpool_backward
dropout_forward dropout_backward vec_relu_backward softmax_xent"
for f in $FUNCS; do
	perf probe -q -x "$W/cnn-train" -a "$G:$f=$f+0" -a "$G:${f}_ret=$f%return" 2>/dev/null ||
		echo "profile: no probe on $f (renamed or inlined?)" >&2
done

"$PY" "$TOP/bench/train.py" data "$W/data.npy" "$SIZE" $((STEPS * 10 + 10))
echo "profile: cnn-train at ${SIZE}x$SIZE, batch 10, $THREADS thread(s), $STEPS steps" >&2
# prof OUT PERF-OPTION...: one training run under perf record
prof() {
	out=$1
	shift
	perf record -q -o "$out" "$@" -- "$W/cnn-train" --train "$W/data.npy" -o "$W/m.npz" -q \
		--threads "$THREADS" --stop-after "$STEPS" --log-every 1000 >/dev/null
}
# two runs: sampling at a frequency (-F) would sample the probes too and lose calls
prof "$W/trace.data" -e "$G:*"
perf script -i "$W/trace.data" -F tid,time,event 2>/dev/null | grep "$G:" >"$W/calls.txt"
perf probe -q -d "$G:*"
prof "$W/perf.data" -F 499 -e cpu-clock

"$PY" - "$W/calls.txt" "$G" <<'EOF'
import collections, re, sys

# default spec: the n-th call of a function within one step is this layer
NAMES = {
    "conv2d_forward": ["conv1_1", "conv1_2", "conv2_1", "conv2_2"],
    "conv2d_backward": ["conv2_2", "conv2_1", "conv1_2", "conv1_1 (no dX)"],
    "maxpool_forward": ["pool1", "pool2"], "maxpool_backward": ["pool2", "pool1"],
    "dropout_forward": ["pool1", "pool2", "fc1"], "dropout_backward": ["fc1", "pool2", "pool1"],
    "dense_forward": ["fc1", "softmax"], "dense_backward": ["softmax", "fc1 (dX, dW)"],
    # every layer but the last has relu set, pool and dropout layers too
    "vec_relu_backward": ["drop fc1", "fc1", "drop pool2", "pool2", "conv2_2", "conv2_1",
                          "drop pool1", "pool1", "conv1_2", "conv1_1"],
}
PHASE = {"model_forward": "forward", "model_backward": "backward",
         "optim_adam_step": "optimiser (Adam)", "dataset_gather": "data (gather)"}
path, group = sys.argv[1], sys.argv[2]
rx = re.compile(r"(\d+)\s+([\d.]+):\s+" + group + r":(\w+?)(_ret__return)?:")
open_ = {}
steps = []          # per step: list of (name, seconds, depth)
cur, nth = None, collections.Counter()
for line in open(path):
    m = rx.search(line)
    if not m:
        continue
    tid, t, fn, ret = m.group(1), float(m.group(2)), m.group(3), m.group(4)
    if fn == "dataset_gather" and not ret:
        cur, nth = [], collections.Counter()
        steps.append(cur)
    if cur is None:
        continue
    if not ret:
        open_[(tid, fn)] = t
        continue
    t0 = open_.pop((tid, fn), None)
    if t0 is None:
        continue
    if fn in PHASE:
        cur.append((PHASE[fn], t - t0, 0))
    else:
        k = nth[fn]
        nth[fn] += 1
        names = NAMES.get(fn, [])
        short = fn.replace("nn_", "").replace("_forward", " fwd").replace("_backward", " bwd")
        cur.append((f"{short} {names[k] if k < len(names) else '#%d' % k}", t - t0, 1))
steps = steps[2:] if len(steps) > 2 else steps
if not steps:
    sys.exit("profile: no complete step traced")
tot = collections.defaultdict(float)
for s in steps:
    for name, d, depth in s:
        tot[(name, depth)] += d / len(steps)
step = sum(v for (n, d), v in tot.items() if d == 0)
print(f"per step, mean of {len(steps)} steps: {step * 1000:.0f} ms "
      f"(phases: gather, forward, backward, Adam)")
print(f"{'phase / call':<34} {'ms':>8} {'share':>7}")
for (name, depth), v in sorted(tot.items(), key=lambda kv: -kv[1]):
    if depth == 0:
        print(f"{name:<34} {v * 1000:8.1f} {100 * v / step:6.1f}%")
print()
print(f"{'layer call (inside the phases)':<34} {'ms':>8} {'share':>7}")
inner = 0
for (name, depth), v in sorted(tot.items(), key=lambda kv: -kv[1]):
    if depth == 1:
        inner += v
        print(f"{name:<34} {v * 1000:8.1f} {100 * v / step:6.1f}%")
fb = tot[("forward", 0)] + tot[("backward", 0)]
print(f"{'(forward+backward outside layers)':<34} {(fb - inner) * 1000:8.1f} {100 * (fb - inner) / step:6.1f}%")
EOF
echo
echo "hottest symbols (cpu-clock samples, all threads, the whole run incl. start and checkpoint):"
perf report -i "$W/perf.data" --stdio --no-children --sort dso,sym \
	--percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25
