#!/usr/bin/env bats
# cnn-train --logdir, --image-every, --snapshots: the tutorial's TensorBoard runs read back by
# tfevents-cat, an independent framing reader (tests/tfrecord.py) with protoc --decode_raw
# and Pillow; the snapshot stream by numpy, against a numpy forward pass of the checkpoint.

load helper

# 50 noise images of 32x32, batch 5: 10 steps an epoch, 20 in 2 epochs; metrics every 5
# steps, maps every 4 (steps 0, 4, ..., 20: 6 snapshots). The default spec, so the names
# are the tutorial's: weights1_1, conv1_2, conv2_2.
ARGS=(--epochs 2 --batch 5 --lr 1e-3 --image-every 4 --seed 3 -q)

setup_file() {
	local py=${PETCNN_PYTHON:-/usr/bin/python3} d=$BATS_FILE_TMPDIR
	"$py" -c '
import sys, numpy as np
r = np.random.default_rng(5)
def mk(path, n):
    with open(path, "wb") as f:
        np.save(f, r.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
        np.save(f, (np.arange(n) % 2).astype(np.int64))
        np.save(f, np.array(["samoyed", "shiba_inu"]))
mk(sys.argv[1] + "/train.npy", 50)
mk(sys.argv[1] + "/test.npy", 12)' "$d"
	cnn-train --train "$d/train.npy" --test "$d/test.npy" \
		-o "$d/m.npz" "${ARGS[@]}" --logdir "$d/runs" --snapshots "$d/snap.npy" > "$d/metrics.txt"
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	D=$BATS_FILE_TMPDIR
}

# The one event file of a run folder.
evfile() {
	local f
	f=$(ls "$1"/events.out.tfevents.*)
	[ "$(echo "$f" | wc -l)" = 1 ] || fail "expected one event file in $1: $f"
	echo "$f"
}

@test "cnn-train --logdir: conventions, and --help documents the logging options" {
	check_conventions cnn-train
	run --separate-stderr cnn-train --help
	assert_output --partial '--logdir DIR'
	assert_output --partial '--image-every N'
	assert_output --partial '--snapshots FILE'
}

@test "cnn-train --logdir: train and test runs with Loss and Accuracy every 5 steps, as on stdout" {
	[ -d "$D/runs/train" ] && [ -d "$D/runs/test" ] && [ -d "$D/runs/test_epoch" ]
	run --separate-stderr tfevents-cat --no-filename "$D/runs/train" "$D/runs/test" "$D/runs/test_epoch"
	assert_success
	[ -z "$stderr" ]
	for r in train test test_epoch; do
		tfevents-cat --no-filename "$D/runs/$r" | awk -F'\t' -v r=$r '$3 == "scalar" {print $1, r "/" $4, $5}'
	done > logged.txt
	# Every stdout metric is in its run under the bare tag, same step, same float32 value.
	py '
got = {}
for l in open("logged.txt"):
    s, tag, v = l.split()
    got[(int(s), tag)] = float(v)
want = {}
for l in open(sys.argv[1]):
    s, tag, v = l.split()
    want[(int(s), tag)] = float(v)
assert set(got) == set(want), sorted(set(got) ^ set(want))
for k, v in want.items():
    assert abs(got[k] - v) <= 1e-5 * max(1, abs(v)), (k, got[k], v)   # %.6g on stdout
steps = sorted(s for s, t in want if t == "train/Loss")
assert steps == [5, 10, 15, 20], steps
assert sorted(s for s, t in want if t == "test/Accuracy") == steps
assert sorted(s for s, t in want if t == "test_epoch/Loss") == [10, 20]' "$D/metrics.txt"
}

@test "cnn-train --logdir: weights1_1 histogram, feature-map images every N steps, the graph" {
	run --separate-stderr tfevents-cat --no-filename "$D/runs/train"
	assert_success
	# histogram at steps 0, 5, ..., 20 over conv1_1's 3x3x3x32 weights, buckets adding up
	echo "$output" | awk -F'\t' '$3 == "histogram"' > h.txt
	py '
rows = [l.rstrip("\n").split("\t") for l in open("h.txt")]
assert [int(r[0]) for r in rows] == [0, 5, 10, 15, 20], [r[0] for r in rows]
for r in rows:
    assert r[3] == "weights1_1", r[3]
    f = r[4].split()
    kv = dict(x.split("=") for x in f if "=" in x)
    assert float(kv["num"]) == 864, kv
    assert sum(float(x.split(":")[1]) for x in f if ":" in x) == 864, r
    assert -0.21 < float(kv["min"]) < float(kv["max"]) < 0.21, kv'
	# maps: 32 of 32x32 in 6x6 tiles, 64 of 16x16 in 8x8, with 1-pixel separators
	echo "$output" | awk -F'\t' '$3 == "image" {print $1, $4, $5}' > img.txt
	for s in 0 4 8 12 16 20; do
		grep -qx "$s conv1_2/maps 197x197 colorspace=1 png [0-9]* bytes" img.txt || fail "conv1_2 at $s: $(cat img.txt)"
		grep -qx "$s conv2_2/maps 135x135 colorspace=1 png [0-9]* bytes" img.txt || fail "conv2_2 at $s"
	done
	[ "$(wc -l < img.txt)" = 12 ]
	# the graph once, with the tutorial's scopes
	[ "$(echo "$output" | awk -F'\t' '$3 == "graph"' | wc -l)" = 1 ]
	assert_output --regexp $'\tgraph\t-\t[0-9]+ nodes: .*conv1_1/weights1_1 .*conv1_1/Conv2D .*conv1_2/Relu .*pool1/MaxPool .*fc1/'
}

@test "cnn-train --logdir: protoc --decode_raw decodes every record; the images decode with Pillow" {
	f=$(evfile "$D/runs/train")
	"$PY" "$TOP/tests/tfrecord.py" "$f" pl || fail "framing or CRC error in $f"
	: > pl.txt
	for p in pl/*.pb; do
		echo "== $p" >> pl.txt
		protoc --decode_raw < "$p" >> pl.txt || fail "protoc cannot decode $p"
	done
	run cat pl.txt
	assert_output --regexp $'== pl/000.pb\n1: 0x[0-9a-f]{16}\n3: "brain.Event:2"'
	assert_output --regexp $'2: 5\n5 \\{\n  1 \\{\n    1: "Loss"\n    2: 0x[0-9a-f]{8}'
	assert_output --regexp $'1: "weights1_1"\n    5 \\{\n      1: 0x'
	assert_output --regexp $'1: "conv1_2/maps"\n    4 \\{\n      1: 197\n      2: 197\n      3: 1\n      4: "\\\\211PNG'
	assert_output --partial '1: "conv2_2/Conv2D"'
	"$PY" "$TOP/tests/tfrecord.py" "$(evfile "$D/runs/test")" tl || fail "test run"
	# The last conv2_2 grid is the last snapshot tiled, each channel scaled by its min and max:
	# the exact value (v - lo) / (hi - lo) * 255 in rational arithmetic, rounded half to even.
	py '
import glob, io, os
from PIL import Image
last = None
for p in sorted(glob.glob("pl/*.pb")):
    d = open(p, "rb").read()
    if b"conv2_2/maps" in d:
        last = d
q = last[last.index(b"\x89PNG"):]
g = np.asarray(Image.open(io.BytesIO(q[:q.index(b"IEND") + 8])))
assert g.shape == (135, 135) and g.dtype == np.uint8, g.shape
f = open(sys.argv[1], "rb")
maps = []
while f.tell() < os.fstat(f.fileno()).st_size:
    maps.append(np.load(f))
m = maps[-1][0]
from fractions import Fraction
want = np.zeros((135, 135), dtype=np.int64)
for k in range(64):
    c = m[..., k]
    lo, hi = Fraction(float(c.min())), Fraction(float(c.max()))
    t = [[128 if hi <= lo else round((Fraction(float(v)) - lo) / (hi - lo) * 255) for v in row]
         for row in c]
    y, x = k // 8 * 17, k % 8 * 17
    want[y:y + 16, x:x + 16] = t
bad = np.argwhere(g != want)
assert len(bad) == 0, (len(bad), bad[:5])   # exact: the grid scales in double precision' "$D/snap.npy"
}

@test "cnn-train --snapshots: conv1_2 then conv2_2 maps per snapshot, the last one a numpy forward of the checkpoint" {
	py '
import os
f = open(sys.argv[1], "rb")
arrs = []
while f.tell() < os.fstat(f.fileno()).st_size:
    arrs.append(np.load(f))
assert len(arrs) == 12, len(arrs)
for i, a in enumerate(arrs):
    assert a.dtype == np.float32 and a.shape == ((1, 32, 32, 32) if i % 2 == 0 else (1, 16, 16, 64)), (i, a.shape)
    assert np.isfinite(a).all() and (a >= 0).all(), i     # after ReLU
assert not np.array_equal(arrs[0], arrs[-2]), "maps never changed"
# Steps 0..20: the last snapshot is of the final parameters, which the checkpoint holds.
z = np.load(sys.argv[2])
f = open(sys.argv[3], "rb")
x = np.load(f)[0].astype(np.float64) / 255
def conv(x, name, idx):
    w = z["%s/weights%s" % (name, idx)].astype(np.float64)
    b = z["%s/biases%s" % (name, idx)].astype(np.float64)
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    h, wd = x.shape[:2]
    out = sum(p[ky:ky + h, kx:kx + wd] @ w[ky, kx] for ky in range(3) for kx in range(3)) + b
    return np.maximum(out, 0)
def pool(x):
    h, w, c = x.shape
    return x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
c12 = conv(conv(x, "conv1_1", "1_1"), "conv1_2", "1_2")
c22 = conv(conv(pool(c12), "conv2_1", "2_1"), "conv2_2", "2_2")
for got, want, n in ((arrs[-2][0], c12, "conv1_2"), (arrs[-1][0], c22, "conv2_2")):
    err = np.abs(got - want).max() / max(1, np.abs(want).max())
    assert err < 1e-4, (n, err)                         # float32 against float64' "$D/snap.npy" "$D/m.npz" "$D/train.npy"
}

@test "cnn-train --logdir: logging changes no metric nor checkpoint; stdin gives the same" {
	cnn-train --train - --test "$D/test.npy" -o m.npz "${ARGS[@]}" < "$D/train.npy" > metrics.txt
	cmp metrics.txt "$D/metrics.txt"
	py '
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert sorted(a.files) == sorted(b.files)
for k in a.files:
    assert np.array_equal(a[k], b[k]), k' m.npz "$D/m.npz"
}

@test "cnn-train --snapshots: a stopped and resumed run writes the same stream as an uninterrupted one" {
	run --separate-stderr cnn-train --train "$D/train.npy" --test "$D/test.npy" -o m.npz "${ARGS[@]}" \
		--snapshots snap.npy --logdir runs --stop-after 10
	assert_success
	# a torn array at the end, as a crash mid-write would leave: cut on resume
	head -c 300 snap.npy >> snap.npy
	run --separate-stderr cnn-train --train "$D/train.npy" --test "$D/test.npy" -o m.npz "${ARGS[@]}" \
		--snapshots snap.npy --logdir runs --resume m.npz
	assert_success
	cmp snap.npy "$D/snap.npy"
	# the resumed run's events go to a second file of the same runs
	[ "$(ls runs/train | wc -l)" = 2 ]
	tfevents-cat --no-filename runs/train | awk -F'\t' '$4 == "Loss" {print $1}' | tr '\n' ' ' > steps.txt
	[ "$(cat steps.txt)" = "5 10 15 20 " ] || fail "$(cat steps.txt)"
}

@test "cnn-train --logdir: bad paths and values fail clearly and train nothing" {
	run --separate-stderr cnn-train --train "$D/train.npy" -o m.npz "${ARGS[@]}" --snapshots -
	assert_failure 1
	assert_output ''
	[[ $stderr == "cnn-train: "*stdout* ]] || fail "$stderr"
	[ ! -e m.npz ]
	touch afile
	run --separate-stderr cnn-train --train "$D/train.npy" -o m.npz "${ARGS[@]}" --logdir afile
	assert_failure 1
	[[ $stderr == *afile* ]] || fail "$stderr"
	[ ! -e m.npz ]
	echo precious > notes.txt
	run --separate-stderr cnn-train --train "$D/train.npy" -o m.npz "${ARGS[@]}" --snapshots notes.txt \
		--resume "$D/m.npz"
	assert_failure 1
	[[ $stderr == *"notes.txt: not a snapshot stream"* ]] || fail "$stderr"
	[ "$(cat notes.txt)" = precious ]
	run --separate-stderr cnn-train --train "$D/train.npy" -o m.npz --image-every 0
	assert_failure 2
	assert_output ''
}

@test "cnn-train --gradcam-every: Grad-CAM of 4 test images over them in the test run; the training bytes unchanged" {
	cnn-train --train "$D/train.npy" --test "$D/test.npy" -o g.npz "${ARGS[@]}" --logdir runs \
		--gradcam-every 8 > metrics.txt
	cmp metrics.txt "$D/metrics.txt"
	cnn-train --train "$D/train.npy" --test "$D/test.npy" -o plain.npz "${ARGS[@]}" > /dev/null
	cmp g.npz plain.npz
	run tfevents-cat runs/test
	assert_success
	# steps 0, 8, 16 of 20; a 2x2 grid of 32x32 cells with a 1-pixel gap
	[ "$(grep -c $'\timage\tgradcam\t65x65 colorspace=3 png' <<< "$output")" = 3 ] || fail "$output"
	for s in 0 8 16; do
		grep -q $'^[^\t]*\t'"$s"$'\t[^\t]*\timage\tgradcam' <<< "$output" || fail "no gradcam at step $s"
	done
	run --separate-stderr cnn-train --train "$D/train.npy" -o x.npz "${ARGS[@]}" --gradcam-every 4
	assert_failure 2
	[[ $stderr == *"--gradcam-every goes with --logdir and --test"* ]] || fail "$stderr"
}
