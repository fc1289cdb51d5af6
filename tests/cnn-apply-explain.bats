#!/usr/bin/env bats
# cnn-apply's maps of why a model decides (Grad-CAM, saliency, occlusion) against a float64
# PyTorch twin of the checkpoint (tests/explain_ref.py, 1e-4 relative), on the default
# network and on a graph with add and concat; SmoothGrad, filters and feature
# visualisation; and bad inputs refused with one line naming the file or item.

load helper

setup_file() {
	cd "$BATS_FILE_TMPDIR"
	"$PY" -c '
import numpy as np
r = np.random.default_rng(11)
with open("ds.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8))
    np.save(f, np.array([0, 1, 0, 1, 0, 1], dtype=np.int64))
    np.save(f, np.array(["cat", "dog"]))
np.save("x12.npy", r.integers(0, 256, (2, 12, 12, 3), dtype=np.uint8))
'
	cnn-train -q --train ds.npy -o model.npz --epochs 2 --batch 3 --seed 3 --lr 1e-3 >/dev/null
	cnn-train -q --train ds.npy -o g.npz --epochs 2 --batch 3 --seed 4 --lr 1e-2 --keep-conv 1 --keep-fc 1 \
		--model "c1=conv:3x3:4 c2=conv:3x3:4 s=add:relu@c1,c2 c3=conv:1x1:3@c1 cat=concat@s,c3 p=maxpool:2x2 out=dense:K" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	D=$BATS_FILE_TMPDIR
}

# ref MODEL GOT OP TARGET [ARGS]: explain_ref.py on the dataset, its line shown
ref() {
	local model=$1 got=$2
	shift 2
	run "$PY" "$TOP/tests/explain_ref.py" "$D/$model" "$D/ds.npy" "$got" "$@"
	echo "# $output" >&3
	assert_success
	assert_output --partial "ok "
}

@test "cnn-apply explain: Grad-CAM, saliency and occlusion of the default network equal PyTorch's (float64) to 1e-4" {
	cnn-apply --gradcam pred -m "$D/model.npz" "$D/ds.npy" > a.npy
	ref model.npz a.npy gradcam pred conv2_2
	cnn-apply --gradcam label -m "$D/model.npz" "$D/ds.npy" > b.npy
	ref model.npz b.npy gradcam label conv2_2
	cnn-apply --gradcam dog --no-upsample -m "$D/model.npz" "$D/ds.npy" > c.npy
	ref model.npz c.npy gradcam dog conv2_2 noup
	cnn-apply --gradcam 0 --layer conv1_2 -m "$D/model.npz" "$D/ds.npy" > d.npy
	ref model.npz d.npy gradcam 0 conv1_2
	cnn-apply --saliency pred -m "$D/model.npz" "$D/ds.npy" > e.npy
	ref model.npz e.npy saliency pred
	cnn-apply --saliency label -m "$D/model.npz" "$D/ds.npy" > f.npy
	ref model.npz f.npy saliency label
	cnn-apply --occlusion pred --patch 4 -m "$D/model.npz" "$D/ds.npy" > g.npy
	ref model.npz g.npy occlusion pred 4 4
	cnn-apply --occlusion cat --patch 5 --stride 3 -m "$D/model.npz" "$D/ds.npy" > h.npy
	ref model.npz h.npy occlusion cat 5 3
	py 'a = np.load("h.npy"); assert a.shape == (6, 6, 6, 1), a.shape'
}

@test "cnn-apply explain: the same on a graph (residual add, concat): Grad-CAM's default layer is the concat" {
	cnn-apply --gradcam pred -m "$D/g.npz" "$D/ds.npy" > a.npy
	ref g.npz a.npy gradcam pred cat
	cnn-apply --gradcam label --layer s -m "$D/g.npz" "$D/ds.npy" > b.npy
	ref g.npz b.npy gradcam label s
	cnn-apply --gradcam 1 --layer c1 --no-upsample -m "$D/g.npz" "$D/ds.npy" > c.npy
	ref g.npz c.npy gradcam 1 c1 noup
	cnn-apply --saliency pred -m "$D/g.npz" "$D/ds.npy" > d.npy
	ref g.npz d.npy saliency pred
	cnn-apply --occlusion label --patch 3 --stride 2 -m "$D/g.npz" "$D/ds.npy" > e.npy
	ref g.npz e.npy occlusion label 3 2
}

@test "cnn-apply explain: the reference comparison fails when a map is wrong" {
	cnn-apply --gradcam pred -m "$D/model.npz" "$D/ds.npy" > a.npy
	py 'a = np.load("a.npy"); a[2, 5, 5, 0] *= 1.001; np.save("a.npy", a)'
	run "$PY" "$TOP/tests/explain_ref.py" "$D/model.npz" "$D/ds.npy" a.npy gradcam pred conv2_2
	assert_failure
	assert_output --partial "FAIL gradcam"
}

@test "cnn-apply explain: SmoothGrad is seeded per image, and one noiseless copy is the saliency" {
	cnn-apply --saliency pred --smoothgrad 12,0.2 --seed 5 -m "$D/model.npz" "$D/ds.npy" > a.npy
	cnn-apply --saliency pred --smoothgrad 12,0.2 --seed 5 -m "$D/model.npz" "$D/ds.npy" > b.npy
	cnn-apply --saliency pred --smoothgrad 12,0.2 --seed 6 -m "$D/model.npz" "$D/ds.npy" > c.npy
	cnn-apply --saliency pred --smoothgrad 12,0.2 --seed 5 --index 4 -m "$D/model.npz" "$D/ds.npy" > i.npy
	cmp a.npy b.npy
	! cmp -s a.npy c.npy
	cnn-apply --saliency pred --smoothgrad 1,0 -m "$D/model.npz" "$D/ds.npy" > s1.npy
	cnn-apply --saliency pred -m "$D/model.npz" "$D/ds.npy" > s.npy
	py 'a, i, s1, s = (np.load(f) for f in ("a.npy", "i.npy", "s1.npy", "s.npy"))
assert (a[4:5] == i).all(), "an image'"'"'s noise is its own, whatever the batch"
# within rounding: conv1_1'"'"'s input gradient is an sgemm whose shape follows the batch (a
# copy of one image against six), and OpenBLAS'"'"'s AVX-512 cores (SkylakeX, Cooperlake) sum
# small ones in another order: 3.1e-6 of the largest on a Zen 4, 0 on its Haswell core
assert np.abs(s1 - s).max() <= 1e-5 * np.abs(s).max(), (np.abs(s1 - s).max(), np.abs(s).max())
# averaging noisy maps smooths: neighbouring pixels differ less than in one map
tv = lambda m: np.abs(np.diff(m, axis=2)).mean() / m.mean()
assert tv(a) < tv(s), (tv(a), tv(s))'
}

@test "cnn-apply explain: --weights gives a convolution's filters as [COUT, KH, KW, CIN] images" {
	cnn-apply --weights conv1_1 -m "$D/model.npz" -o w.npy
	cnn-apply --weights c3 -m "$D/g.npz" > w3.npy
	py 'z = np.load(sys.argv[1]); w = np.load("w.npy")
assert w.dtype == np.float32 and w.shape == (32, 3, 3, 3), w.shape
assert (w == z["conv1_1/weights1_1"].transpose(3, 0, 1, 2)).all()
z = np.load(sys.argv[2]); w = np.load("w3.npy")
assert w.shape == (3, 1, 1, 4) and (w == z["c3/weights1_3"].transpose(3, 0, 1, 2)).all()' "$D/model.npz" "$D/g.npz"
}

@test "cnn-apply explain: --maximize raises a channel well above the test images' (same seed, same bytes)" {
	local ch
	cnn-apply --layer conv2_2 -m "$D/model.npz" "$D/ds.npy" > test_act.npy
	for ch in 0 3 7; do
		cnn-apply --maximize conv2_2:$ch -m "$D/model.npz" -o m$ch.npy
		cnn-apply --layer conv2_2 -m "$D/model.npz" m$ch.npy > act$ch.npy
		run py 'c = int(sys.argv[1]); m = np.load(sys.argv[2])
assert m.dtype == np.uint8 and m.shape == (1, 16, 16, 3), m.shape
got = np.load(sys.argv[3])[..., c].mean(); test = np.load("test_act.npy")[..., c].mean(axis=(1, 2)).max()
print("conv2_2:%d: mean activation %.4f, the test images'"'"' largest %.4f: %.1fx" % (c, got, test, got / test))
assert got > 2 * test' $ch m$ch.npy act$ch.npy
		echo "# $output" >&3
		assert_success
	done
	cnn-apply --maximize conv2_2:3 -m "$D/model.npz" > again.npy
	cmp m3.npy again.npy
	cnn-apply --maximize conv2_2:3 --seed 2 --steps 16 --lr 0.05 -m "$D/model.npz" > other.npy
	! cmp -s m3.npy other.npy
	# a graph's branch, and a dense unit
	cnn-apply --maximize s:1 --steps 32 -m "$D/g.npz" > gs.npy
	cnn-apply --maximize fc1:4 --steps 32 -m "$D/model.npz" > fc.npy
}

@test "cnn-apply explain: bad inputs are one clear line naming the file or item, exit 1, nothing written" {
	run --separate-stderr cnn-apply --gradcam pred --layer conv9 -m "$D/model.npz" -o out.npy "$D/ds.npy"
	assert_failure 1
	[[ $stderr == "cnn-apply: $D/model.npz: no layer named 'conv9' (layers: conv1_1 "* ]] || fail "$stderr"
	[ ! -e out.npy ]
	run --separate-stderr cnn-apply --gradcam pred --layer fc1 -m "$D/model.npz" "$D/ds.npy"
	assert_failure 1
	[[ $stderr == "cnn-apply: $D/model.npz: layer fc1 is dense with a 1x1 output: Grad-CAM wants a layer with a spatial output"* ]] || fail "$stderr"
	assert_output ''
	run --separate-stderr cnn-apply --saliency bird -m "$D/model.npz" "$D/ds.npy"
	assert_failure 1
	[[ $stderr == "cnn-apply: $D/model.npz: target 'bird' is not pred, label or a class of the model (0 cat, 1 dog)" ]] || fail "$stderr"
	run --separate-stderr cnn-apply --occlusion 2 --patch 4 -m "$D/model.npz" "$D/ds.npy"
	assert_failure 1
	[[ $stderr == *"target '2' is not"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --gradcam pred -m "$D/model.npz" -o out.npy "$D/x12.npy"
	assert_failure 1
	[[ $stderr == "cnn-apply: $D/x12.npy: images are 12x12x3 but the model in $D/model.npz takes 16x16x3" ]] || fail "$stderr"
	[ ! -e out.npy ]
	# label wants the labels after the images
	run --separate-stderr cnn-apply --gradcam label -m "$D/model.npz" "$D/x12.npy"
	assert_failure 1
	py 'f = open("imgs.npy", "wb"); np.save(f, np.load(sys.argv[1])); np.save(f, np.array([0, 1, 5, 0, 1, 0]))' "$D/ds.npy"
	run --separate-stderr cnn-apply --saliency label -m "$D/model.npz" imgs.npy
	assert_failure 1
	[[ $stderr == "cnn-apply: imgs.npy: image 2 of array 0 has label 5, not a class of the model in $D/model.npz (2 classes)" ]] || fail "$stderr"
	head -c 3200 "$D/ds.npy" > cut.npy
	run --separate-stderr cnn-apply --saliency label -m "$D/model.npz" cut.npy
	assert_failure 1
	[[ $stderr == "cnn-apply: cut.npy: truncated"* ]] || fail "$stderr"
	run --separate-stderr cnn-apply --weights pool1 -m "$D/model.npz" -o out.npy
	assert_failure 1
	[[ $stderr == "cnn-apply: $D/model.npz: layer pool1 is maxpool, not a convolution"* ]] || fail "$stderr"
	[ ! -e out.npy ]
	run --separate-stderr cnn-apply --maximize conv2_2:64 -m "$D/model.npz"
	assert_failure 1
	[[ $stderr == "cnn-apply: $D/model.npz: layer conv2_2 has 64 channels, there is no channel 64" ]] || fail "$stderr"
	assert_output ''
	run --separate-stderr cnn-apply --maximize conv7:1 -m "$D/model.npz"
	assert_failure 1
	[[ $stderr == "cnn-apply: $D/model.npz: no layer named 'conv7'"* ]] || fail "$stderr"
}

@test "cnn-apply explain: usage errors are exit 2" {
	for args in "--gradcam pred" "--gradcam pred --saliency pred -m m.npz" "--occlusion pred -m m.npz" \
		"--saliency pred --patch 3 -m m.npz" "--gradcam pred --smoothgrad 4 -m m.npz" \
		"--saliency pred --no-upsample -m m.npz" "--maximize conv1 -m m.npz" "--maximize conv1:x -m m.npz" \
		"--weights c1 -m m.npz in.npy" "--gray --seed 3" "--saliency pred --smoothgrad 0 -m m.npz" \
		"--maxpool 2 --layer c1" "--gradcam pred --steps 3 -m m.npz"; do
		# shellcheck disable=SC2086
		run --separate-stderr cnn-apply $args
		assert_failure 2
		assert_output ''
		[[ $stderr == "cnn-apply: "* ]] || fail "$args: $stderr"
	done
}
