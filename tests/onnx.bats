#!/usr/bin/env bats
# ONNX in (lib/onnx): the backend-model unit test, and networks PyTorch exports (our small
# ones and torchvision's ResNet-18, MobileNetV2, SqueezeNet 1.1 with random weights and
# randomised batch-norm statistics) translated by onnx_import and run by tests/onnx_ref.py's
# NumPy interpreter of the spec: the same output as PyTorch within 1e-4.
load helper

BUILD_DIR=${PETCNN_BUILD:-$TOP/build}

@test "onnx: the graph reader and the importer's unit tests pass" {
	run "$BUILD_DIR/tests/test_onnx_graph"
	assert_success
	run "$BUILD_DIR/tests/test_onnx_import"
	assert_success
	run "$BUILD_DIR/tests/test_onnx_load"
	assert_success
}

@test "onnx: --init-from's reader takes every parameter, the same bits as cnn-convert's" {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/onnx_ref.py" export res "$d/res.onnx"
	run "$BUILD_DIR/tests/test_onnx_load" finetune "$d/res.onnx"
	assert_success
	assert_line --partial "new 0; 0 of its tensors unused"
	assert_line "test_onnx_load: 2 passed, 0 failed"
}

same_as_torch() {
	local net=$1 d=$BATS_TEST_TMPDIR
	run "$PY" "$TOP/tests/onnx_ref.py" export "$net" "$d/$net.onnx"
	assert_success
	run --separate-stderr "$BUILD_DIR/tests/test_onnx_import" "$d/$net.onnx" "$d/$net.npz"
	assert_success
	echo "$output" > "$d/$net.txt"
	run "$PY" "$TOP/tests/onnx_ref.py" run "$d/$net.txt" "$d/$net.npz" "$d/$net.onnx.x.npy" \
		"$d/$net.onnx.y.npy" 1e-4
	assert_success
}

@test "onnx: conv+bn+relu, ceil pool, depthwise, residual add, flatten permutation, ReLU6" {
	same_as_torch res
	# the batch norms are folded into their convs: no bn layer is left
	! grep -q "=bn" "$BATS_TEST_TMPDIR/res.txt"
	grep -q "=conv:3x3:8:p1,1,1,1:g8:linear" "$BATS_TEST_TMPDIR/res.txt"
}
@test "onnx: concat, LeakyReLU, avg pool, a bn that cannot fold, global pool, dropout" {
	same_as_torch cat
}
@test "onnx: average pools counting their pads (a Pad folded into the pool)" {
	same_as_torch incl
	grep -q "=avgpool:3x3:s2:p1,1,1,1:incl" "$BATS_TEST_TMPDIR/incl.txt"
	grep -q "=avgpool:3x3:s1:p1,1,1,1:incl" "$BATS_TEST_TMPDIR/incl.txt"
}
@test "onnx: a Pad of zeros before a Conv, and before a MaxPool of a ReLU's output" {
	same_as_torch padconv
	grep -q "^y=conv:3x3:4:p2,2,2,2:linear$" "$BATS_TEST_TMPDIR/padconv.txt"
	same_as_torch padmax
	grep -q " y=maxpool:3x3:s2:p1,2,2,1$" "$BATS_TEST_TMPDIR/padmax.txt"
}
@test "onnx: a Pad that cannot be folded is refused naming the node" {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/onnx_ref.py" export padmaxneg "$d/n.onnx"
	run --separate-stderr "$BUILD_DIR/tests/test_onnx_import" "$d/n.onnx" "$d/n.npz"
	assert_failure 1
	[[ $stderr == *"n.onnx: node #2 (MaxPool): zero padding of an input that may be negative"* ]] || fail "$stderr"
	"$PY" "$TOP/tests/onnx_ref.py" export padrelu "$d/r.onnx"
	run --separate-stderr "$BUILD_DIR/tests/test_onnx_import" "$d/r.onnx" "$d/r.npz"
	assert_failure 1
	[[ $stderr == *"r.onnx: node #3 (Relu): its input comes from node #2 (Pad)"* ]] || fail "$stderr"
	[ ! -e "$d/n.npz" ] && [ ! -e "$d/r.npz" ]
}
@test "onnx: torchvision resnet18" { same_as_torch resnet18; }
@test "onnx: torchvision mobilenet_v2" { same_as_torch mobilenet_v2; }
@test "onnx: torchvision squeezenet1_1" { same_as_torch squeezenet1_1; }

@test "onnx: the comparison fails when a weight is wrong" {
	local d=$BATS_TEST_TMPDIR
	"$PY" "$TOP/tests/onnx_ref.py" export res "$d/res.onnx"
	"$BUILD_DIR/tests/test_onnx_import" "$d/res.onnx" "$d/res.npz" > "$d/res.txt"
	py 'z = dict(np.load(sys.argv[1])); k = [n for n in z if "fc1" in n and "weights" in n][0]
z[k] = z[k].copy(); z[k][0, 0] += 0.5; np.savez(sys.argv[1], **z)' "$d/res.npz"
	run "$PY" "$TOP/tests/onnx_ref.py" run "$d/res.txt" "$d/res.npz" "$d/res.onnx.x.npy" "$d/res.onnx.y.npy" 1e-4
	assert_failure
	assert_output --partial "differs from PyTorch"
}

@test "onnx: a model we cannot run is one error naming the file, and nothing is written" {
	run --separate-stderr "$BUILD_DIR/tests/test_onnx_import" \
		/usr/share/libonnx-testdata/data/node/test_tanh/model.onnx "$BATS_TEST_TMPDIR/x.npz"
	assert_failure 1
	[[ $stderr == *"test_tanh/model.onnx: "* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/x.npz" ]
}
