#!/usr/bin/env bats
# cnn-convert: ONNX in, and back out. torchvision's networks (random weights, randomised batch-norm
# statistics, tests/convert_ref.py) converted with ImageNet's normalisation give PyTorch's
# probabilities through cnn-eval; the normalisation and class names land in the checkpoint;
# a file we cannot convert is one error naming it, and nothing is written.

load helper

IMAGENET="--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225"
CLASSES=c0,c1,c2,c3,c4,c5

# same_as_torch NET NORM [cnn-convert options]: PyTorch's probabilities to 1e-4.
same_as_torch() {
	local net=$1 norm=$2 d=$BATS_TEST_TMPDIR
	shift 2
	run "$PY" "$TOP/tests/convert_ref.py" export "$net" "$d/$net.onnx" "$d/$net.npy" "$norm"
	assert_success
	run cnn-convert -q "$d/$net.onnx" -o "$d/$net.npz" --classes $CLASSES "$@"
	assert_success
	assert_output ''
	run --separate-stderr cnn-eval -q -m "$d/$net.npz" -p "$d/$net.tsv" "$d/$net.npy"
	assert_success
	run "$PY" "$TOP/tests/convert_ref.py" compare "$d/$net.tsv" "$d/$net.npy.probs.npy" 1e-4
	assert_success
	echo "# $net ($norm): $output" >&3
}

@test "cnn-convert: conventions" {
	check_conventions cnn-convert
}

@test "cnn-convert: torchvision resnet18 with ImageNet's mean and std gives PyTorch's probabilities" {
	same_as_torch resnet18 imagenet $IMAGENET
}
@test "cnn-convert: torchvision mobilenet_v2" { same_as_torch mobilenet_v2 imagenet $IMAGENET; }
@test "cnn-convert: torchvision squeezenet1_1" { same_as_torch squeezenet1_1 imagenet $IMAGENET; }
@test "cnn-convert: torchvision googlenet (ceil pools, four-way concats)" { same_as_torch googlenet imagenet $IMAGENET; }
@test "cnn-convert: torchvision densenet121 (batch norms before convs, a one-input concat)" {
	same_as_torch densenet121 imagenet $IMAGENET
}
@test "cnn-convert: torchvision mnasnet0_5 (its head is a ReduceMean over H and W)" {
	same_as_torch mnasnet0_5 imagenet $IMAGENET
}
@test "cnn-convert: torchvision inception_v3 (pools counting their pads: Pad folded)" {
	same_as_torch inception_v3 imagenet $IMAGENET
}

@test "cnn-convert: --bgr feeds the network B, G, R, and the normalisation is in the checkpoint" {
	local d=$BATS_TEST_TMPDIR
	same_as_torch resnet18 imagenet-bgr $IMAGENET --bgr
	run py 'z = np.load(sys.argv[1])
assert np.allclose(z["model/mean"], [0.485, 0.456, 0.406]) and z["model/mean"].dtype == np.float32
assert np.allclose(z["model/std"], [0.229, 0.224, 0.225])
assert int(z["model/bgr"]) == 1
assert list(z["classes"]) == ["c%d" % i for i in range(6)], z["classes"]
assert list(z["model/input"]) == [64, 64, 3]
assert "train/step" not in z' "$d/resnet18.npz"
	assert_success
}

@test "cnn-convert: without options the checkpoint has the default /255 and classes class0.." {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/convert_ref.py" export squeezenet1_1 "$d/s.onnx" "$d/s.npy" none
	run --separate-stderr cnn-convert "$d/s.onnx" -o "$d/s.npz"
	assert_success
	[[ $stderr == *"s.onnx -> "*"s.npz: "*"64x64 input, 6 classes"* ]] || fail "$stderr"
	run py 'z = np.load(sys.argv[1])
assert "model/mean" not in z and "model/bgr" not in z
assert list(z["classes"]) == ["class%d" % i for i in range(6)], z["classes"]' "$d/s.npz"
	assert_success
}

@test "cnn-convert: cnn-eval and cnn-apply take the .onnx directly (pixels / 255)" {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/convert_ref.py" export resnet18 "$d/r.onnx" "$d/r.npy" none
	run --separate-stderr cnn-eval -q -m "$d/r.onnx" -p "$d/r.tsv" "$d/r.npy"
	assert_success
	run "$PY" "$TOP/tests/convert_ref.py" compare "$d/r.tsv" "$d/r.npy.probs.npy" 1e-4
	assert_success
	# by content when the name says neither: not a zip, so ONNX
	cp "$d/r.onnx" "$d/r.model"
	run --separate-stderr cnn-eval -q -m "$d/r.model" "$d/r.npy"
	assert_success
	run --separate-stderr cnn-apply --layer maxpool_MaxPool -m "$d/r.onnx" --index 0 "$d/r.npy"
	assert_success
	cnn-apply --layer maxpool_MaxPool -m "$d/r.onnx" --index 0 "$d/r.npy" > "$d/f.npy"
	run py 'assert np.load(sys.argv[1]).shape == (1, 16, 16, 64)' "$d/f.npy"
	assert_success
}

@test "cnn-convert: --classes from a file, and a wrong count names both counts" {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/convert_ref.py" export squeezenet1_1 "$d/s.onnx" "$d/s.npy" none
	printf 'tabby cat\r\nshiba inu\nc\n\nd\ne\nf\n' > "$d/names.txt"
	run cnn-convert -q "$d/s.onnx" -o "$d/s.npz" --classes "$d/names.txt"
	assert_success
	run py 'z = np.load(sys.argv[1])
assert list(z["classes"]) == ["tabby cat", "shiba inu", "c", "d", "e", "f"], z["classes"]' "$d/s.npz"
	assert_success
	run --separate-stderr cnn-convert -q "$d/s.onnx" -o "$d/t.npz" --classes a,b,c
	assert_failure 1
	[[ $stderr == *"3 class names, the model has 6 classes"* ]] || fail "$stderr"
	[ ! -e "$d/t.npz" ]
	run --separate-stderr cnn-convert -q "$d/s.onnx" -o "$d/t.npz" --classes a,,c,d,e,f
	assert_failure 1
	[[ $stderr == *"empty class name"* ]] || fail "$stderr"
}

@test "cnn-convert: --size gives a graph with open height and width its input size" {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/convert_ref.py" export resnet18 "$d/r.onnx" "$d/r.npy" none dynamic
	run --separate-stderr cnn-convert -q "$d/r.onnx" -o "$d/r.npz"
	assert_failure 1
	[[ $stderr == "cnn-convert: $d/r.onnx: "* ]] || fail "$stderr"
	[ ! -e "$d/r.npz" ]
	# cnn-eval -m takes an open graph at the dataset's size
	run --separate-stderr cnn-eval -q -m "$d/r.onnx" -p "$d/direct.tsv" "$d/r.npy"
	assert_success
	run "$PY" "$TOP/tests/convert_ref.py" compare "$d/direct.tsv" "$d/r.npy.probs.npy" 1e-4
	assert_success
	run cnn-convert -q "$d/r.onnx" -o "$d/r.npz" --size 64x64 --classes $CLASSES
	assert_success
	run --separate-stderr cnn-eval -q -m "$d/r.npz" -p "$d/r.tsv" "$d/r.npy"
	assert_success
	run "$PY" "$TOP/tests/convert_ref.py" compare "$d/r.tsv" "$d/r.npy.probs.npy" 1e-4
	assert_success
}

@test "cnn-convert: a file it cannot convert is exit 1 naming it; -o is replaced only on success" {
	local d=$BATS_TEST_TMPDIR bad
	"$PY" "$TOP/tests/convert_ref.py" export squeezenet1_1 "$d/s.onnx" "$d/s.npy" none
	head -c 20000 "$d/s.onnx" > "$d/trunc.onnx"
	printf 'this is not a model\n' > "$d/text.onnx"
	"$PY" "$TOP/tests/convert_ref.py" export tanh "$d/tanh.onnx" "$d/t.npy" none
	mkdir "$d/o"
	echo old > "$d/o/out.npz"
	for bad in "$d/trunc.onnx" "$d/text.onnx" "$d/tanh.onnx" \
		"$d/missing.onnx"; do
		run --separate-stderr cnn-convert "$bad" -o "$d/o/out.npz"
		assert_failure 1
		assert_output ''
		[[ $stderr == "cnn-convert: $bad: "* ]] || fail "$stderr"
		[ "$(cat "$d/o/out.npz")" = old ]
		[ "$(ls -A "$d/o")" = out.npz ]  # no temporary left either
	done
	run --separate-stderr cnn-convert "$d/tanh.onnx" -o "$d/o/out.npz"
	[[ $stderr == *"(Tanh)"* ]] || fail "the op is not named: $stderr"
	echo "# $stderr" >&3
	run cnn-convert -q "$d/s.onnx" -o "$d/o/out.npz"
	assert_success
	run py 'assert "model/spec" in np.load(sys.argv[1])' "$d/o/out.npz"
	assert_success
}

@test "cnn-convert: a checkpoint back to ONNX runs in OpenCV with our probabilities" {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/convert_ref.py" export squeezenet1_1 "$d/s.onnx" "$d/s.npy" imagenet
	cnn-convert -q "$d/s.onnx" -o "$d/s.npz" $IMAGENET --classes $CLASSES
	run --separate-stderr cnn-convert "$d/s.npz" -o "$d/back.onnx"
	assert_success
	cnn-eval -q -m "$d/s.npz" -p "$d/s.tsv" "$d/s.npy" > /dev/null
	run py 'import numpy as np, onnx, cv2
onnx.checker.check_model(onnx.load(sys.argv[1]))
with open(sys.argv[2], "rb") as f:
    x = np.load(f)
net = cv2.dnn.readNetFromONNX(sys.argv[1])
net.setInput(x.transpose(0, 3, 1, 2).astype(np.float32))
theirs = net.forward()
ours = np.loadtxt(sys.argv[3], skiprows=1, usecols=range(3, 3 + theirs.shape[1]), ndmin=2)
d = np.abs(theirs - ours).max()
print("max abs diff %.3g" % d)
assert d < 1e-4, d' "$d/back.onnx" "$d/s.npy" "$d/s.tsv"
	assert_success
	echo "# squeezenet1_1 back to ONNX, OpenCV: $output" >&3
}

@test "cnn-convert: usage errors are exit 2" {
	run --separate-stderr cnn-convert x.onnx
	assert_failure 2
	[[ $stderr == *"-o FILE is required"* ]] || fail "$stderr"
	run --separate-stderr cnn-convert -o y.npz
	assert_failure 2
	run --separate-stderr cnn-convert a.npz -o b.npz
	assert_failure 2
	[[ $stderr == *"one must be ONNX"* ]] || fail "$stderr"
	run --separate-stderr cnn-convert a.onnx -o b.npz --mean 1,2
	assert_failure 2
	run --separate-stderr cnn-convert a.onnx -o b.npz --std 0.2,0,0.2
	assert_failure 2
	run --separate-stderr cnn-convert a.onnx -o b.npz --size 64
	assert_failure 2
}
