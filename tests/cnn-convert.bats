#!/usr/bin/env bats
# cnn-convert: ONNX in, and back out. torchvision's networks (random weights, randomised batch-norm
# statistics, tests/convert_ref.py) converted with ImageNet's normalisation give PyTorch's
# probabilities through cnn-eval; the normalisation and class names land in the checkpoint;
# a file we cannot convert is one error naming it, and nothing is written; our own checkpoint
# exported and read back is itself (spec, parameters, normalisation, class names).

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

@test "cnn-convert: torchvision resnet18 with ImageNet's mean and std gives PyTorch's probabilities, by Winograd and by the direct kernels" {
	local d=$BATS_TEST_TMPDIR
	same_as_torch resnet18 imagenet $IMAGENET
	PETCNN_WINOGRAD=0 run --separate-stderr cnn-eval -q -m "$d/resnet18.npz" -p "$d/direct.tsv" "$d/resnet18.npy"
	assert_success
	run "$PY" "$TOP/tests/convert_ref.py" compare "$d/direct.tsv" "$d/resnet18.npy.probs.npy" 1e-4
	assert_success
	echo "# resnet18, PETCNN_WINOGRAD=0: $output" >&3
}
@test "cnn-convert: torchvision mobilenet_v2 at 160x160, its first blocks by bands of rows, gives PyTorch's probabilities, the bits of whole batches" {
	local d=$BATS_TEST_TMPDIR
	same_as_torch mobilenet_v2-160 imagenet $IMAGENET
	PETCNN_BAND=0 run --separate-stderr cnn-eval -q -m "$d/mobilenet_v2-160.npz" -p "$d/whole.tsv" \
		"$d/mobilenet_v2-160.npy"
	assert_success
	cmp "$d/mobilenet_v2-160.tsv" "$d/whole.tsv"
}
@test "cnn-convert: torchvision mobilenet_v2 (each Conv + Clip(0, 6) one relu6 conv)" {
	same_as_torch mobilenet_v2 imagenet $IMAGENET
	run py 'spec = str(np.load(sys.argv[1])["model/spec"])
assert spec.count(":relu6") == 35 and "clip" not in spec, spec' "$BATS_TEST_TMPDIR/mobilenet_v2.npz"
	assert_success
}
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

# our_model DIR: DIR/n.npz, the default network trained briefly at 32x32 on DIR/d.npy (three
# classes, names with a quote and an accent), given a BGR normalisation that is not the
# default by numpy (not by cnn-convert, whose reading is under test).
our_model() {
	local d=$1
	py 'r = np.random.default_rng(5)
with open(sys.argv[1], "wb") as f:
    np.save(f, r.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8))
    np.save(f, (np.arange(20) % 3).astype(np.int64))
    np.save(f, np.array(["cat", "dog \"x\"", "owl é"]))' "$d/d.npy"
	cnn-train -q --train "$d/d.npy" -o "$d/m.npz" --epochs 1 --batch 10 --lr 1e-3 > /dev/null
	py 'z = dict(np.load(sys.argv[1]))
z["model/mean"] = np.array([0.406, 0.456, 0.485], np.float32)
z["model/std"] = np.array([0.225, 0.224, 0.229], np.float32)
z["model/bgr"] = np.array(1, np.int64)
np.savez(sys.argv[2], **z)' "$d/m.npz" "$d/n.npz"
}

@test "cnn-convert: our checkpoint to ONNX and back is itself: spec, parameters to the bit, normalisation, classes" {
	local d=$BATS_TEST_TMPDIR
	our_model "$d"
	run --separate-stderr cnn-convert "$d/n.npz" -o "$d/n.onnx"
	assert_success
	# the nodes carry our layer names; the normalisation's are marked
	run py 'import onnx
m = onnx.load(sys.argv[1])
print(m.producer_name, " ".join(n.name for n in m.graph.node))' "$d/n.onnx"
	assert_output "petcnn petcnn_input_bgr petcnn_input_bgr/concat petcnn_input_norm conv1_1 conv1_1/relu conv1_2 conv1_2/relu pool1 conv2_1 conv2_1/relu conv2_2 conv2_2/relu pool2 fc1/flat fc1 fc1/relu softmax probabilities"
	run --separate-stderr cnn-convert "$d/n.onnx" -o "$d/back.npz"
	assert_success
	run py 'a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert str(b["model/spec"]) == str(a["model/spec"]), (b["model/spec"], a["model/spec"])
params = [k for k in a.files if "/" in k and k.split("/")[0] not in ("model", "train", "adam")]
assert len(params) == 12 and sorted(params) == sorted(k for k in b.files if "/" in k and not k.startswith("model/")), b.files
for k in params:
    assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
for k in ["model/mean", "model/std", "model/bgr", "classes", "model/input"]:
    assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), (k, a[k], b[k])
print("same")' "$d/n.npz" "$d/back.npz"
	assert_success
	assert_output same
	# run from the .onnx directly: the probabilities of the checkpoint
	cnn-eval -q -m "$d/n.npz" -p "$d/a.tsv" "$d/d.npy" > /dev/null
	cnn-eval -q -m "$d/n.onnx" -p "$d/b.tsv" "$d/d.npy" > /dev/null
	run py 'a = np.loadtxt(sys.argv[1], skiprows=1, usecols=(3, 4, 5))
b = np.loadtxt(sys.argv[2], skiprows=1, usecols=(3, 4, 5))
assert a.shape == (20, 3) and np.abs(a - b).max() <= 1e-6, np.abs(a - b).max()
assert open(sys.argv[1]).readline() == open(sys.argv[2]).readline()  # the header: class names' "$d/a.tsv" "$d/b.tsv"
	assert_success
}

@test "cnn-convert: a checkpoint with relu6 convs and clip layers to ONNX and back is itself" {
	local d=$BATS_TEST_TMPDIR
	our_model "$d"
	# MobileNetV2's ReLU6 on a strided, a depthwise and a pointwise conv, and a ReLU6 conv's
	# twin (a linear conv then clip:0:6); clips with a lower bound not 0, with one bound
	local spec="s=conv:3x3:8:s2:relu6 d=conv:3x3:8:g8:relu6 p=conv:1x1:8:relu6 q=conv:1x1:8:linear@d q6=clip:0:6 a=add@p,q6 lc=clip:-0.5:4 up=clip:-0.25:3.40282347e+38 lo=clip:-3.40282347e+38:5 drop:conv gap fc=dense:K"
	cnn-train -q --train "$d/d.npy" -o "$d/m6.npz" --model "$spec" --init he --epochs 1 --batch 10 > /dev/null
	run --separate-stderr cnn-convert "$d/m6.npz" -o "$d/m6.onnx"
	assert_success
	# no Clip node: OpenCV 4.6 reads Clip's bounds only as attributes, opset 13 has inputs
	run py 'import onnx
m = onnx.load(sys.argv[1])
ops = [n.op_type for n in m.graph.node]
assert "Clip" not in ops, ops
print(" ".join(n.name for n in m.graph.node if n.name.endswith("/relu6")))' "$d/m6.onnx"
	assert_success
	assert_output "s/relu6 d/relu6 p/relu6"
	run --separate-stderr cnn-convert "$d/m6.onnx" -o "$d/back.npz"
	assert_success
	run py 'a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert str(b["model/spec"]) == str(a["model/spec"]), (b["model/spec"], a["model/spec"])
params = [k for k in a.files if "/" in k and k.split("/")[0] not in ("model", "train", "adam")]
assert len(params) == 10 and sorted(params) == sorted(k for k in b.files if "/" in k and not k.startswith("model/")), b.files
for k in params:
    assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
print("same")' "$d/m6.npz" "$d/back.npz"
	assert_success
	assert_output same
	# and the probabilities: the checkpoint's, the ONNX file's run by us and by OpenCV
	cnn-eval -q -m "$d/m6.npz" -p "$d/a.tsv" "$d/d.npy" > /dev/null
	cnn-eval -q -m "$d/m6.onnx" -p "$d/b.tsv" "$d/d.npy" > /dev/null
	run py 'import cv2
a = np.loadtxt(sys.argv[1], skiprows=1, usecols=(3, 4, 5))
b = np.loadtxt(sys.argv[2], skiprows=1, usecols=(3, 4, 5))
assert a.shape == (20, 3) and np.abs(a - b).max() <= 1e-6, np.abs(a - b).max()
with open(sys.argv[4], "rb") as f:
    x = np.load(f)
net = cv2.dnn.readNetFromONNX(sys.argv[3])
net.setInput(x.transpose(0, 3, 1, 2).astype(np.float32))
d = np.abs(net.forward() - a).max()
assert d < 1e-4, d
print("OpenCV max abs diff %.3g" % d)' "$d/a.tsv" "$d/b.tsv" "$d/m6.onnx" "$d/d.npy"
	assert_success
	echo "# relu6 and clips back from ONNX, $output" >&3
}

@test "cnn-convert: cnn-train --init-from our ONNX file loads every tensor by our names; options override what the file carries" {
	local d=$BATS_TEST_TMPDIR
	our_model "$d"
	cnn-convert -q "$d/n.npz" -o "$d/n.onnx"
	run --separate-stderr cnn-train -q --train "$d/d.npy" -o "$d/ft.npz" --epochs 1 --batch 10 \
		--init-from "$d/n.onnx" --freeze-below fc1
	assert_success
	[[ $stderr == *"n.onnx: loaded 12 tensors (conv1_1 conv1_2 conv2_1 conv2_2 fc1 softmax), new 0; 0 of its tensors unused"* ]] ||
		fail "$stderr"
	run py 'a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert list(b["train/frozen"]) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"], b["train/frozen"]
for k in ["model/mean", "model/std", "model/bgr"]:
    assert np.array_equal(a[k], b[k]), k
for k in a.files:
    if k.startswith("conv"):
        assert np.array_equal(a[k], b[k]), k' "$d/n.npz" "$d/ft.npz"
	assert_success
	# --mean/--std/--bgr replace the file's normalisation (here with the default), --classes its names
	run cnn-convert -q "$d/n.onnx" -o "$d/o.npz" --mean 0,0,0 --classes x,y,z
	assert_success
	run py 'z = np.load(sys.argv[1])
assert "model/mean" not in z and "model/bgr" not in z, z.files
assert list(z["classes"]) == ["x", "y", "z"]' "$d/o.npz"
	assert_success
	# another producer's file is read as any other: its input pixels / 255, the nodes layers
	cnn-convert -q "$d/o.npz" -o "$d/o.onnx"
	py 'import onnx
m = onnx.load(sys.argv[1])
m.producer_name = "pytorch"
onnx.save(m, sys.argv[2])' "$d/o.onnx" "$d/p.onnx"
	run cnn-convert -q "$d/p.onnx" -o "$d/p.npz"
	assert_success
	run py 'z = np.load(sys.argv[1])
assert str(z["model/spec"].ravel()[0]).startswith("petcnn_input_norm=bn "), z["model/spec"]
assert "model/mean" not in z' "$d/p.npz"
	assert_success
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
