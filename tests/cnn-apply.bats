#!/usr/bin/env bats
# cnn-apply against independent references: conv and max-pool against PyTorch with
# TensorFlow's SAME/VALID geometry rebuilt by hand (tests/apply_ref.py), --gray against
# numpy's mean, --layer against the checkpoint's own weights; and bad inputs refused with
# one line naming the file, nothing written.

load helper

setup_file() {
	cd "$BATS_FILE_TMPDIR"
	# Odd and even sizes, u1 and f4, 4-d batches and one 3-d image; filters with odd and
	# even windows (an even window is where SAME pads unevenly: the extra at bottom/right).
	"$PY" -c '
import numpy as np
r = np.random.default_rng(7)
np.save("x98.npy", r.standard_normal((2, 9, 8, 3)).astype(np.float32))
np.save("x1010.npy", r.integers(0, 256, (3, 10, 10, 3), dtype=np.uint8))
np.save("x3d.npy", r.standard_normal((7, 11, 2)).astype(np.float32))
np.save("w33.npy", r.standard_normal((3, 3, 3, 5)).astype(np.float32))
np.save("w43.npy", r.standard_normal((4, 3, 3, 2)).astype(np.float32))
np.save("w22.npy", r.standard_normal((2, 2, 2, 3)).astype(np.float64))
# A tiny dataset stream for --gray and for training a checkpoint.
with open("ds.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (6, 12, 10, 3), dtype=np.uint8))
    np.save(f, np.array([0, 1, 0, 1, 0, 1], dtype=np.int64))
    np.save(f, np.array(["cat", "dog"]))
'
	cnn-train -q --train ds.npy -o model.npz --epochs 1 --batch 3 --seed 3 \
		--model "c1=conv:3x3:4 c2=conv:3x3:5 p1=maxpool:2x2 drop:conv fc=dense:7 out=dense:K" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	D=$BATS_FILE_TMPDIR
}

@test "cnn-apply: --help, --version, bad option" {
	check_conventions cnn-apply
}

@test "cnn-apply: conv and max-pool agree with PyTorch: SAME and VALID, odd and even sizes, strides 1, 2, 3" {
	: > cases
	for x in x98 x1010; do
		for w in w33 w43; do
			[[ $x == x98 || $w == w33 ]] || continue
			for s in 1 2 3; do
				for p in SAME VALID; do
					# w43 has cin 3: both inputs have 3 channels
					cnn-apply --conv "$D/$w.npy" --stride $s --padding $p "$D/$x.npy" > "c_${x}_${w}_${s}_$p.npy"
					echo "conv $D/$x.npy $D/$w.npy $s $p c_${x}_${w}_${s}_$p.npy" >> cases
				done
			done
		done
		for k in 2 3; do
			for s in 1 2; do
				for p in SAME VALID; do
					cnn-apply --maxpool $k --stride $s --padding $p "$D/$x.npy" > "m_${x}_${k}_${s}_$p.npy"
					echo "maxpool $D/$x.npy $k $s $p m_${x}_${k}_${s}_$p.npy" >> cases
				done
			done
		done
	done
	# a 3-d [H, W, C] image stays 3-d; an f8 filter bank with cin 2
	cnn-apply --conv "$D/w22.npy" --stride 2 --padding same "$D/x3d.npy" > c3d.npy
	echo "conv $D/x3d.npy $D/w22.npy 2 SAME c3d.npy" >> cases
	cnn-apply --maxpool 2 "$D/x3d.npy" > m3d.npy
	echo "maxpool $D/x3d.npy 2 2 SAME m3d.npy" >> cases
	run "$PY" "$TOP/tests/apply_ref.py" cases
	echo "$output"
	assert_success
	[ "$(grep -c '^ok' <<< "$output")" -eq "$(wc -l < cases)" ]
}

@test "cnn-apply: SAME puts the odd padding pixel at the bottom and right, as TensorFlow" {
	# ones(3x3) conv ones(2x2), SAME: total padding 1 per axis, all of it after, so the
	# last row and column see half a window; padding before would halve the first ones.
	py 'np.save("ones.npy", np.ones((1, 3, 3, 1), np.float32)); np.save("k.npy", np.ones((2, 2, 1, 1), np.float32))'
	cnn-apply --conv k.npy --padding SAME ones.npy > out.npy
	py 'a = np.load("out.npy")[0, :, :, 0]
want = np.array([[4, 4, 2], [4, 4, 2], [2, 2, 1]], np.float32)
assert (a == want).all(), a'
	# max-pool 2x2 stride 2 on 3x3: outputs 2x2, the last window holds only pixel (2, 2)
	py 'np.save("r.npy", np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1) * -1)'
	cnn-apply --maxpool 2 r.npy > p.npy
	py 'a = np.load("p.npy")[0, :, :, 0]
assert (a == np.array([[0, -2], [-6, -8]], np.float32)).all(), a'
	cnn-apply --maxpool 2 --padding VALID r.npy > v.npy
	py 'a = np.load("v.npy"); assert a.shape == (1, 1, 1, 1) and a[0, 0, 0, 0] == 0, a'
}

@test "cnn-apply: --gray is numpy's channel mean; labels and classes are dropped" {
	cnn-apply --gray "$D/ds.npy" > g.npy
	py '
f = open(sys.argv[1], "rb")
imgs = np.load(f)
g = open("g.npy", "rb")
a = np.load(g)
assert not g.read(1), "more than one array: labels/classes passed through"
want = imgs.astype(np.float64).mean(axis=3, keepdims=True)
assert a.dtype == np.float32 and a.shape == want.shape, (a.dtype, a.shape)
assert np.abs(a - want).max() <= 1e-4, np.abs(a - want).max()   # 0..255 in float32
' "$D/ds.npy"
}

@test "cnn-apply: stdin and file give the same bytes; -o writes the same; --index picks one image" {
	cnn-apply --conv "$D/w33.npy" "$D/x98.npy" > file.npy
	cnn-apply --conv "$D/w33.npy" < "$D/x98.npy" > stdin.npy
	cat "$D/x98.npy" | cnn-apply --conv "$D/w33.npy" - > pipe.npy
	cnn-apply --conv "$D/w33.npy" -o out.npy "$D/x98.npy"
	cmp file.npy stdin.npy
	cmp file.npy pipe.npy
	cmp file.npy out.npy
	cnn-apply --conv "$D/w33.npy" --index 1 "$D/x98.npy" > one.npy
	py 'a, b = np.load("file.npy"), np.load("one.npy")
assert b.shape == (1,) + a.shape[1:], b.shape
assert (a[1] == b[0]).all()'
	# a stream of several arrays gives one output array each, in order
	cat "$D/x98.npy" "$D/ds.npy" "$D/x98.npy" | cnn-apply --gray > multi.npy
	py 'f = open("multi.npy", "rb")
shapes = [np.load(f).shape for _ in range(3)]
assert shapes == [(2, 9, 8, 1), (6, 12, 10, 1), (2, 9, 8, 1)], shapes
assert not f.read(1)'
}

@test "cnn-apply: --progress draws one finished bar per image array (lib/apply reports, the tool draws); -q none" {
	cat "$D/x1010.npy" "$D/ds.npy" "$D/x98.npy" > multi.npy
	run --separate-stderr cnn-apply --gray --progress -o out.npy multi.npy
	assert_success
	# each array's bar, as last drawn before its newline, ends at the array's count
	[ "$(printf '%s\n' "$stderr" | awk -F '\r' '{ print $NF }' | grep -o '] [0-9]*/[0-9]*' | tr -d '\n')" = "] 3/3] 6/6] 2/2" ]
	run --separate-stderr cnn-apply --gray -q -o out.npy multi.npy
	assert_success
	[ -z "$stderr" ]
}

@test "cnn-apply: chained gray | conv with the shipped 7x7 filters | maxpool" {
	cnn-apply --gray "$D/ds.npy" | cnn-apply --conv "$TOP/pipelines/filters7x7.npy" |
		cnn-apply --maxpool 2 > chain.npy
	py 'a = np.load("chain.npy"); assert a.shape == (6, 6, 5, 4), a.shape'
	py 'w = np.load(sys.argv[1]); assert w.shape == (7, 7, 1, 4) and w.dtype == np.float32
# edges sum to 0, blur and sharpen to 1
assert np.allclose(w.sum(axis=(0, 1, 2)), [0, 0, 1, 1], atol=1e-6), w.sum(axis=(0, 1, 2))' \
		"$TOP/pipelines/filters7x7.npy"
}

@test "cnn-apply: --layer gives that layer's feature maps, the model's own scaling" {
	for l in c1:6,12,10,4 c2:6,12,10,5 p1:6,6,5,5 fc:6,1,1,7 out:6,1,1,2; do
		cnn-apply --layer "${l%%:*}" -m "$D/model.npz" "$D/ds.npy" > "$l.npy"
		py 'a = np.load(sys.argv[1]); want = tuple(int(v) for v in sys.argv[2].split(","))
assert a.shape == want and a.dtype == np.float32, (a.shape, want)' "$l.npy" "${l#*:}"
	done
	# c1 = relu(conv(images / 255, weights) + bias), SAME stride 1, computed by PyTorch
	py '
import torch, torch.nn.functional as F
z = np.load(sys.argv[2])
w, b = z["c1/weights1_1"].astype(np.float64), z["c1/biases1_1"].astype(np.float64)
x = torch.from_numpy(np.load(sys.argv[1]).astype(np.float64) / 255).permute(0, 3, 1, 2)
y = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1)), torch.from_numpy(w).permute(3, 2, 0, 1),
                    torch.from_numpy(b))).permute(0, 2, 3, 1).numpy()
got = np.load("c1:6,12,10,4.npy")
assert np.abs(got - y).max() <= 1e-5, np.abs(got - y).max()
' "$D/ds.npy" "$D/model.npz"
	cnn-apply --layer c2 -m "$D/model.npz" --index 2 "$D/ds.npy" > c2i.npy
	py 'a, b = np.load("c2:6,12,10,5.npy"), np.load("c2i.npy"); assert (a[2:3] == b).all()'
}

@test "cnn-apply: bad inputs are one clear line naming the file, exit 1, nothing written" {
	printf 'not a tensor at all\n' > junk.npy
	run --separate-stderr cnn-apply --gray -o out.npy junk.npy
	assert_failure 1
	[[ $stderr == "cnn-apply: junk.npy: "* ]] || fail "$stderr"
	[ ! -e out.npy ]
	run --separate-stderr cnn-apply --gray < junk.npy
	assert_failure 1
	[[ $stderr == "cnn-apply: <stdin>: "* ]] || fail "$stderr"
	assert_output ''

	# filters for 2 channels on 3-channel images
	run --separate-stderr cnn-apply --conv "$D/w22.npy" -o out.npy "$D/x98.npy"
	assert_failure 1
	[[ $stderr == *"$D/x98.npy"*"3 channels"*"$D/w22.npy"*"2"* ]] || fail "$stderr"
	[ ! -e out.npy ]

	run --separate-stderr cnn-apply --layer conv9 -m "$D/model.npz" "$D/ds.npy"
	assert_failure 1
	[[ $stderr == *"$D/model.npz: no layer named 'conv9' (layers: c1 c2 p1 dropout fc out)"* ]] || fail "$stderr"
	assert_output ''

	# --layer wants the model's uint8 images
	run --separate-stderr cnn-apply --layer c1 -m "$D/model.npz" "$D/x98.npy"
	assert_failure 1
	[[ $stderr == *"$D/x98.npy: --layer wants uint8 images"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --layer c1 -m "$D/model.npz" "$D/x1010.npy"
	assert_failure 1
	[[ $stderr == *"$D/x1010.npy: images are 10x10x3 but the model in $D/model.npz takes 12x10x3"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --layer c1 -m junk.npy "$D/ds.npy"
	assert_failure 1
	[[ $stderr == "cnn-apply: junk.npy"* ]] || fail "$stderr"

	# a VALID window larger than the image, an index past the batch
	run --separate-stderr cnn-apply --maxpool 12 --padding VALID "$D/x98.npy"
	assert_failure 1
	[[ $stderr == *"$D/x98.npy: "*"does not fit"* ]] || fail "$stderr"
	assert_output ''
	run --separate-stderr cnn-apply --gray --index 2 "$D/x98.npy"
	assert_failure 1
	[[ $stderr == *"$D/x98.npy: array 0 holds 2 images, there is no index 2"* ]] || fail "$stderr"

	# truncated data, a 2-d array, an empty stream, a filter file that is not 4-d
	head -c 300 "$D/x98.npy" > short.npy
	run --separate-stderr cnn-apply --gray -o out.npy short.npy
	assert_failure 1
	[[ $stderr == "cnn-apply: short.npy: truncated"* ]] || fail "$stderr"
	[ ! -e out.npy ]
	py 'np.save("flat.npy", np.zeros((4, 5), np.float32))'
	run --separate-stderr cnn-apply --gray flat.npy
	assert_failure 1
	[[ $stderr == *"flat.npy: array 0 has shape [4, 5]: not images"* ]] || fail "$stderr"
	: > empty.npy
	run --separate-stderr cnn-apply --gray empty.npy
	assert_failure 1
	[[ $stderr == *"empty.npy: no image arrays"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --conv flat.npy "$D/x98.npy"
	assert_failure 1
	[[ $stderr == *"flat.npy: filters must be"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --conv missing.npy "$D/x98.npy"
	assert_failure 1
	[[ $stderr == *"missing.npy: cannot open: No such file"* ]] || fail "$stderr"
}

@test "cnn-apply: usage errors are exit 2" {
	for args in "" "--gray --maxpool 2" "--gray --stride 2" "--layer c1" "--maxpool 0" \
		"--conv f.npy --padding FULL" "--gray a.npy b.npy" "--maxpool 2 --stride x"; do
		# shellcheck disable=SC2086
		run --separate-stderr cnn-apply $args
		assert_failure 2
		assert_output ''
		[[ $stderr == "cnn-apply: "* ]] || fail "$args: $stderr"
	done
}

@test "cnn-apply: --layer gives any node of a graph model (residual add, concat), as PyTorch computes it" {
	cnn-train -q --train "$D/ds.npy" -o g.npz --epochs 2 --batch 3 --seed 4 --lr 1e-2 --keep-conv 1 --keep-fc 1 \
		--model "c1=conv:3x3:4 c2=conv:3x3:4 s=add:relu@c1,c2 c3=conv:1x1:3@c1 cat=concat@s,c3 p=maxpool:2x2 out=dense:K" >/dev/null
	for l in c1 c2 s c3 cat p out; do
		cnn-apply --layer $l -m g.npz "$D/ds.npy" > $l.npy
	done
	py '
import torch, torch.nn.functional as F
z = np.load(sys.argv[2])
T = lambda k: torch.from_numpy(z[k].astype(np.float64))
conv = lambda x, n, pad: F.relu(F.conv2d(F.pad(x, (pad,) * 4), T(n + "/weights1_" + str({"c1": 1, "c2": 2, "c3": 3}[n])).permute(3, 2, 0, 1),
                                          T(n + "/biases1_" + str({"c1": 1, "c2": 2, "c3": 3}[n]))))
x = torch.from_numpy(np.load(sys.argv[1]).astype(np.float64) / 255).permute(0, 3, 1, 2)
c1 = conv(x, "c1", 1); c2 = conv(c1, "c2", 1); s = F.relu(c1 + c2); c3 = conv(c1, "c3", 0)
cat = torch.cat([s, c3], 1); p = F.max_pool2d(cat, 2)
flat = p.permute(0, 2, 3, 1).reshape(p.shape[0], -1)
out = flat @ T("out/weights2_1") + T("out/biases2_1")
for name, want in [("c1", c1), ("c2", c2), ("s", s), ("c3", c3), ("cat", cat), ("p", p)]:
    got = np.load(name + ".npy")
    w = want.permute(0, 2, 3, 1).numpy()
    assert got.shape == w.shape, (name, got.shape, w.shape)
    assert np.abs(got - w).max() <= 1e-5, (name, np.abs(got - w).max())
got = np.load("out.npy").reshape(out.shape)
assert np.abs(got - out.numpy()).max() <= 1e-4, np.abs(got - out.numpy()).max()
# trained: the checkpoint is not its initialisation (the biases moved off 0)
assert np.abs(z["c1/biases1_1"]).max() > 0
' "$D/ds.npy" g.npz
}

@test "cnn-apply --augment: --copies N of each image, labels repeated, classes kept; --seed decides; stdin is the file" {
	cd "$BATS_FILE_TMPDIR"
	local spec=flip,scale:0.4-1,rotate:30,color:0.5
	run --separate-stderr cnn-apply -q --augment $spec --copies 4 --seed 2 -o aug.npy ds.npy
	assert_success
	cnn-apply -q --augment $spec --copies 4 --seed 2 < ds.npy > aug-stdin.npy
	cmp aug.npy aug-stdin.npy
	cnn-apply -q --augment $spec --copies 4 --seed 3 -o aug3.npy ds.npy
	run py '
def load(p):
    f = open(p, "rb"); return np.load(f), np.load(f), np.load(f)
x, y, c = load("ds.npy")
a, b, d = load("aug.npy")
e = load("aug3.npy")[0]
assert a.dtype == np.uint8 and a.shape == (24, 12, 10, 3), a.shape
assert (b == np.repeat(y, 4)).all() and list(d) == ["cat", "dog"]
# image-major: the four copies of image i differ from each other and come from image i
for i in range(6):
    cp = a[4 * i:4 * i + 4].astype(int)
    assert len({cp[k].tobytes() for k in range(4)}) == 4, i
assert (a != e).any(), "another seed, other draws"'
	assert_success
	# a resulting dataset stream trains
	run --separate-stderr cnn-train -q --train aug.npy -o m-aug.npz --epochs 1 --batch 6 \
		--model "c1=conv:3x3:4 out=dense:K"
	assert_success
}

@test "cnn-apply --augment: --copies and --seed go with it, --index does not; non-uint8 images are refused" {
	cd "$BATS_FILE_TMPDIR"
	run --separate-stderr cnn-apply --gray --copies 2 ds.npy
	assert_failure 2
	[[ $stderr == *"--copies goes with --augment"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --gray --seed 2 ds.npy
	assert_failure 2
	[[ $stderr == *"--seed applies to --maximize, --smoothgrad and --augment only"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --augment flip --index 0 ds.npy
	assert_failure 2
	[[ $stderr == *"--index does not go with --augment"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --augment flip,gray ds.npy
	assert_failure 2
	[[ $stderr == *"--augment: 'gray': gray needs a value"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --augment flip -o out.npy x98.npy
	assert_failure 1
	[[ $stderr == *"x98.npy: array 0 is not uint8 RGB images"* ]] || fail "$stderr"
	[ ! -e out.npy ]
	assert_output ''
}

@test "cnn-apply: --layer of a lean model (large layers a few images at a time) is the whole batch's output" {
	local t=$BATS_TEST_TMPDIR l
	# at 224 c1's output is 3.2 MB an image: cnn-apply's batches of 4 run 2 images at a
	# time through c1 and c2, and c1's output lives only until c2 has read it, unless it is
	# the layer asked for
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 10 224 1 "$t/d.npy"
	cnn-train --train "$t/d.npy" -o "$t/m.npz" --model "c1=conv:3x3:16 c2=conv:3x3:16 p=maxpool:8x8 gap out=dense:K" \
		--init he --stop-after 1 -q > /dev/null
	for l in c1 c2 p; do
		cnn-apply --layer $l -m "$t/m.npz" "$t/d.npy" > "$t/lean.npy"
		PETCNN_LEAN=0 cnn-apply --layer $l -m "$t/m.npz" "$t/d.npy" > "$t/whole.npy"
		py 'a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); assert a.shape[0] == 10 and a.std() > 0 and np.array_equal(a, b), sys.argv[3]' \
			"$t/lean.npy" "$t/whole.npy" $l
	done
}
