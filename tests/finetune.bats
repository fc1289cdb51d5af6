#!/usr/bin/env bats
# cnn-train fine-tuning: --init-from takes a checkpoint's parameters by layer name and
# shape with a new head for another class count, --freeze/--freeze-below keep layers
# bit for bit (checked by numpy), the checkpoint records them and --resume keeps them,
# and the feature cache gives the bits of computing every step.

load helper

setup_file() {
	local d=$BATS_FILE_TMPDIR
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 20 16 3 "$d/two.npy"
	# three classes of random images, the source model's training set
	"$PY" -c '
import sys, numpy as np
r = np.random.default_rng(4)
with open(sys.argv[1], "wb") as f:
    np.save(f, r.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8))
    np.save(f, (np.arange(30) % 3).astype(np.int64))
    np.save(f, np.array(["cat", "dog", "owl"]))
' "$d/three.npy"
	cnn-train -q --train "$d/three.npy" -o "$d/src3.npz" --epochs 1 --batch 10 --lr 1e-3 >/dev/null
	cnn-train -q --train "$d/two.npy" -o "$d/src2.npz" --epochs 1 --batch 10 --lr 1e-3 >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	D=$BATS_FILE_TMPDIR
}

@test "finetune: --init-from a 3-class model onto 2 classes, frozen below fc1: frozen bits kept, a new head" {
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o ft.npz --epochs 2 --batch 10 --lr 1e-3 \
		--init-from "$D/src3.npz" --freeze-below fc1
	assert_success
	[[ $stderr == *"cnn-train: $D/src3.npz: loaded 10 tensors (conv1_1 conv1_2 conv2_1 conv2_2 fc1), new 2 (softmax); 2 of its tensors unused"* ]] ||
		fail "$stderr"
	py '
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert list(b["train/frozen"]) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"], b["train/frozen"]
assert list(b["classes"]) == ["square", "circle"], b["classes"]
for k in a.files:
    if k.startswith("conv"):
        assert a[k].dtype == b[k].dtype and (a[k].view(np.uint32) == b[k].view(np.uint32)).all(), k
        assert "adam/m/" + k not in b.files and "adam/v/" + k not in b.files, k
assert not (a["fc1/weights3_1"] == b["fc1/weights3_1"]).all(), "fc1 trains"
assert a["softmax/weights3_2"].shape == (512, 3) and b["softmax/weights3_2"].shape == (512, 2)
assert "adam/m/fc1/weights3_1" in b.files and "adam/v/softmax/biases3_2" in b.files
' "$D/src3.npz" ft.npz
}

@test "finetune: same classes load every tensor; --new-head makes the head anew; --model overrides the spec" {
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o a.npz --epochs 1 --batch 10 --init-from "$D/src2.npz"
	assert_success
	[[ $stderr == *"loaded 12 tensors (conv1_1 conv1_2 conv2_1 conv2_2 fc1 softmax), new 0; 0 of its tensors unused"* ]] || fail "$stderr"
	py 'z = np.load(sys.argv[1]); assert "train/frozen" not in z.files' a.npz
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o b.npz --epochs 1 --batch 10 --init-from "$D/src2.npz" --new-head
	assert_success
	[[ $stderr == *"loaded 10 tensors (conv1_1 conv1_2 conv2_1 conv2_2 fc1), new 2 (softmax); 2 of its tensors unused"* ]] || fail "$stderr"
	# a spec of its own: layers of the same name and shape load, the rest are new
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o c.npz --epochs 1 --batch 10 --init-from "$D/src2.npz" \
		--model "conv1_1=conv:3x3:32 pool1=maxpool:2x2 fc9=dense:K"
	assert_success
	[[ $stderr == *"loaded 2 tensors (conv1_1), new 2 (fc9)"* ]] || fail "$stderr"
}

@test "finetune: --resume keeps the freezing, refuses other freezing without --allow-changes" {
	cnn-train -q --train "$D/two.npy" -o r.npz --epochs 3 --batch 10 --lr 1e-3 --init-from "$D/src3.npz" \
		--freeze conv1_1,conv2_2 --stop-after 2 >/dev/null
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o r2.npz --resume r.npz --epochs 3 --freeze conv1_1
	assert_failure 1
	[[ $stderr == *"r.npz: was trained with frozen layers 'conv1_1,conv2_2', not 'conv1_1'"* ]] || fail "$stderr"
	[ ! -e r2.npz ]
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o r2.npz --resume r.npz --epochs 3
	assert_success
	py '
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert list(b["train/frozen"]) == ["conv1_1", "conv2_2"], b["train/frozen"]
assert int(b["train/step"]) == 6
for k in ["conv1_1/weights1_1", "conv1_1/biases1_1", "conv2_2/weights2_2", "conv2_2/biases2_2"]:
    assert (a[k].view(np.uint32) == b[k].view(np.uint32)).all(), k
assert not (a["conv1_2/weights1_2"] == b["conv1_2/weights1_2"]).all(), "conv1_2 trains"
' "$D/src3.npz" r2.npz
	# the same run in one go: the same bytes (frozen parameters need no optimiser state)
	cnn-train -q --train "$D/two.npy" -o r3.npz --epochs 3 --batch 10 --lr 1e-3 --init-from "$D/src3.npz" \
		--freeze conv1_1,conv2_2 >/dev/null
	cmp r2.npz r3.npz
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o r4.npz --resume r.npz --epochs 3 --freeze conv1_1 --allow-changes
	assert_success
	[[ $stderr == *"resuming with frozen layers 'conv1_1' (they were 'conv1_1,conv2_2')"* ]] || fail "$stderr"
	py 'z = np.load(sys.argv[1]); assert list(z["train/frozen"]) == ["conv1_1"]' r4.npz
}

@test "finetune: bad names and combinations are refused" {
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o x.npz --freeze conv1_1,nope
	assert_failure 1
	[[ $stderr == *"cannot freeze 'nope': no layer of that name (layers with parameters: conv1_1 conv1_2 conv2_1 conv2_2 fc1 softmax)"* ]] || fail "$stderr"
	[ ! -e x.npz ]
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o x.npz --freeze pool1
	assert_failure 1
	[[ $stderr == *"cannot freeze 'pool1': it has no parameters"* ]] || fail "$stderr"
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o x.npz --freeze-below fc9
	assert_failure 1
	[[ $stderr == *"cannot freeze below 'fc9': no layer of that name"* ]] || fail "$stderr"
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o x.npz --new-head
	assert_failure 2
	[[ $stderr == *"--new-head goes with --init-from"* ]] || fail "$stderr"
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o x.npz --init-from "$D/src2.npz" --resume "$D/src2.npz"
	assert_failure 2
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o x.npz --init-from model.onnx
	assert_failure 1
	[[ $stderr == *"model.onnx"* ]] || fail "$stderr"
	run --separate-stderr cnn-train -q --train "$D/two.npy" -o x.npz --init-from "$D/no-such.npz"
	assert_failure 1
	[[ $stderr == *"no-such.npz"* ]] || fail "$stderr"
	[ ! -e x.npz ]
}

@test "finetune: the feature cache gives the bits of computing the frozen layers every step" {
	for cache in 2048 0; do
		run --separate-stderr cnn-train -q --train "$D/two.npy" -o "c$cache.npz" --epochs 3 --batch 6 --lr 1e-3 \
			--init-from "$D/src3.npz" --freeze-below fc1 --keep-conv 1 --feature-cache $cache
		assert_success
		if [[ $cache == 0 ]]; then
			[[ $stderr != *"feature cache"* ]] || fail "$stderr"
		else
			[[ $stderr == *"feature cache: the output of dropout (layer 8 of 11, 4x4x64; all at or below it frozen) for 20 images, 0.1 MB"* ]] ||
				fail "$stderr"
		fi
	done
	cmp c2048.npz c0.npz
	# dropout after pool1 draws: the cut comes down to pool1, still the same bits
	for cache in 2048 0; do
		run --separate-stderr cnn-train -q --train "$D/two.npy" -o "d$cache.npz" --epochs 3 --batch 6 --lr 1e-3 \
			--init-from "$D/src3.npz" --freeze-below fc1 --feature-cache $cache
		assert_success
		[[ $cache == 0 || $stderr == *"feature cache: the output of pool1 (layer 3 of 11, 8x8x32"* ]] || fail "$stderr"
	done
	cmp d2048.npz d0.npz
}

@test "finetune: --init-from an ONNX file (torchvision's squeezenet1_1): its layers loaded, its head made anew" {
	"$PY" "$TOP/tests/convert_ref.py" export squeezenet1_1 sq.onnx sq.npy none
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 8 64 2 two64.npy
	run --separate-stderr cnn-train -q --train two64.npy -o ft.npz --epochs 1 --batch 4 \
		--init-from sq.onnx --freeze-below classifier_classifier_1_Conv
	assert_success
	[[ $stderr == *"sq.onnx: loaded 50 tensors"*"new 2"* ]] || fail "$stderr"
	# the frozen layers are the ONNX file's weights, turned to HWIO
	py 'import onnx, onnx.numpy_helper as nh
m = onnx.load(sys.argv[1])
w = {i.name: nh.to_array(i) for i in m.graph.initializer}
conv = [n for n in m.graph.node if n.op_type == "Conv"][0]
ours = np.load(sys.argv[2])
k = [f for f in ours.files if f.endswith("/weights1_1")][0]
assert np.array_equal(ours[k], w[conv.input[1]].transpose(2, 3, 1, 0)), k
assert len(ours["train/frozen"]) == 25, ours["train/frozen"]' sq.onnx ft.npz
}

@test "finetune: a frozen MobileNetV2 at 160x160 runs its first blocks by bands: the profile shares their time out, the bits of PETCNN_BAND=0" {
	"$PY" "$TOP/tests/convert_ref.py" export mobilenet_v2-160 mv2.onnx mv2.npy none
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 10 160 2 two160.npy
	run --separate-stderr cnn-train --train two160.npy -o band.npz --batch 5 --stop-after 3 --seed 2 \
		--init-from mv2.onnx --freeze-below classifier_classifier_1_Gemm --augment flip --profile
	assert_success
	# layers 0-5 (to the first block's 24 channels at 40x40) by bands, each with its share
	[ "$(printf '%s\n' "$stderr" | grep -c '(by bands)$')" -eq 6 ] || fail "$stderr"
	printf '%s\n' "$stderr" | awk '/\(by bands\)$/ { if ($4 + 0 <= 0) bad = 1 } END { exit bad }' ||
		fail "a band layer without its time: $stderr"
	PETCNN_BAND=0 run --separate-stderr cnn-train --train two160.npy -o whole.npz --batch 5 --stop-after 3 \
		--seed 2 --init-from mv2.onnx --freeze-below classifier_classifier_1_Gemm --augment flip --profile
	assert_success
	! printf '%s\n' "$stderr" | grep -q '(by bands)' || fail "$stderr"
	py 'a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
for k in a.files:
    if a[k].dtype.kind == "f":
        assert np.array_equal(a[k], b[k]), k' band.npz whole.npz
}
