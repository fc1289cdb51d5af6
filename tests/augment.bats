#!/usr/bin/env bats
# Augmentation (lib/img/augment, cnn-train and cnn-apply --augment): the operations
# against numpy on real bytes, the identities, and a bad SPEC refused by both tools with
# exit 2 naming the item, nothing written. The geometry on fixed draws is in
# tests/unit/test_augment.c; determinism and resume in cnn-train.bats.

load helper

setup_file() {
	cd "$BATS_FILE_TMPDIR"
	"$PY" -c '
import numpy as np
r = np.random.default_rng(3)
with open("ds.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (5, 12, 16, 3), dtype=np.uint8))
    np.save(f, np.array([0, 1, 1, 0, 1], dtype=np.int64))
    np.save(f, np.array(["cat", "dog"]))
'
}

@test "augment: flip:1 mirrors every image and gray:1 is 0.299 R + 0.587 G + 0.114 B, against numpy" {
	cd "$BATS_FILE_TMPDIR"
	run --separate-stderr cnn-apply -q --augment flip:1 -o flip.npy ds.npy
	assert_success
	run --separate-stderr cnn-apply -q --augment gray:1 -o gray.npy ds.npy
	assert_success
	run py '
f = open("ds.npy", "rb"); x = np.load(f)
g = open("flip.npy", "rb"); y = np.load(g)
assert y.dtype == np.uint8 and (y == x[:, :, ::-1]).all(), "flip"
h = open("gray.npy", "rb"); z = np.load(h)
ref = x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
assert (z[..., 0] == z[..., 1]).all() and (z[..., 0] == z[..., 2]).all(), "three equal channels"
d = np.abs(z[..., 0] - ref)
assert d.max() <= 0.5 + 1e-4, d.max()'
	assert_success
}

@test "augment: colour 0, rotate 0, scale 1-1, shift 0 and probability 0 leave the bytes" {
	cd "$BATS_FILE_TMPDIR"
	cnn-apply -q --augment color:0,rotate:0,scale:1-1,shift:0,flip:0,gray:0 --copies 3 --seed 9 -o same.npy ds.npy
	run py '
f = open("ds.npy", "rb"); x = np.load(f)
g = open("same.npy", "rb"); y = np.load(g)
assert (y == np.repeat(x, 3, axis=0)).all()'
	assert_success
}

@test "augment: shift:P moves the image by at most P, its edges reflected (numpy's pad mode reflect)" {
	cd "$BATS_FILE_TMPDIR"
	cnn-apply -q --augment shift:3 --copies 20 -o shift.npy ds.npy
	# every copy is the image reflected-padded by 3 and cropped somewhere in 0..6
	run py '
f = open("ds.npy", "rb"); x = np.load(f)
g = open("shift.npy", "rb"); y = np.load(g)
seen = set()
for i in range(len(x)):
    p = np.pad(x[i], ((3, 3), (3, 3), (0, 0)), mode="reflect")
    for c in range(20):
        hits = [(dy, dx) for dy in range(7) for dx in range(7) if (p[dy:dy + 12, dx:dx + 16] == y[i * 20 + c]).all()]
        assert hits, (i, c)
        seen.add(hits[0])
assert len(seen) > 20, ("the crops should vary", seen)'
	assert_success
}

@test "augment: a bad SPEC is exit 2 naming the item, for cnn-train and cnn-apply, nothing written" {
	cd "$BATS_TEST_TMPDIR"
	local ds=$BATS_FILE_TMPDIR/ds.npy
	for spec in "flip,blur:3|'blur:3'" "rotate:ten|'rotate:ten'" "scale:0.9-0.5|'scale:0.9-0.5'" \
		"scale:-0.5-1|'scale:-0.5-1'" "color:2|'color:2'" "gray:-1|'gray:-1'" "shift:12|'shift:12'" \
		"flip,,gray:1|an empty item"; do
		local s=${spec%%|*} want=${spec#*|}
		run --separate-stderr cnn-train -q --train "$ds" -o m.npz --augment "$s"
		assert_failure 2
		assert_output ''
		[[ $stderr == "cnn-train: --augment: "*"$want"* ]] || fail "cnn-train $s: $stderr"
		[ ! -e m.npz ]
		run --separate-stderr cnn-apply --augment "$s" -o out.npy "$ds"
		assert_failure 2
		assert_output ''
		[[ $stderr == "cnn-apply: --augment: "*"$want"* ]] || fail "cnn-apply $s: $stderr"
		[ ! -e out.npy ]
	done
	# a pad of 11 fits 12x16 images
	run --separate-stderr cnn-apply --augment shift:11 -o out.npy "$ds"
	assert_success
}
