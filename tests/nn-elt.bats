#!/usr/bin/env bats
# Parity with PyTorch (Debian's python3-torch) for the pointwise and channel layers: clip,
# leaky ReLU, the per-channel affine (with and without its ReLU) and ONNX's LRN, outputs and
# every gradient against torch in float64 to 1e-5 relative (tests/elt_parity.py). The test
# program is built by `make unit` as build/tests/test_elt.

load helper

setup_file() {
	TEST_ELT=${PETCNN_TEST_ELT:-${PETCNN_BUILD:-$TOP/build}/tests/test_elt}
	[ -x "$TEST_ELT" ] || make -C "$TOP" build/tests/test_elt >&2
}

test_elt() {
	"${PETCNN_TEST_ELT:-${PETCNN_BUILD:-$TOP/build}/tests/test_elt}" "$@"
}

@test "nn-elt: clip, leaky, affine and LRN (sizes 1 to 5, AlexNet's numbers) agree with PyTorch" {
	run --separate-stderr test_elt "$BATS_TEST_TMPDIR"
	assert_success
	run --separate-stderr "$PY" "$TOP/tests/elt_parity.py" "$BATS_TEST_TMPDIR"
	assert_success
	assert_line "elt: 13 cases, 38 tensors within 1e-05"
	assert_line --partial "lrn2: torch's own even window differs"
}

@test "nn-elt: the comparison fails when an LRN gradient is 1e-4 off, or clip passes at its bound" {
	run --separate-stderr test_elt "$BATS_TEST_TMPDIR"
	assert_success
	cp "$BATS_TEST_TMPDIR/elt.npz" "$BATS_TEST_TMPDIR/good.npz"
	py 'z = dict(np.load(sys.argv[1])); z["lrn5/dx"] = z["lrn5/dx"] * np.float32(1.0001)
np.savez(sys.argv[1], **z)' "$BATS_TEST_TMPDIR/elt.npz"
	run --separate-stderr "$PY" "$TOP/tests/elt_parity.py" "$BATS_TEST_TMPDIR"
	assert_failure
	assert_line --partial "lrn5/dx: relative error"
	# x[1] is exactly lo: PyTorch's hardtanh passes no gradient there
	cp "$BATS_TEST_TMPDIR/good.npz" "$BATS_TEST_TMPDIR/elt.npz"
	py 'z = dict(np.load(sys.argv[1])); x = z["clip6/x"].reshape(-1); assert x[1] == 0
d = z["clip6/dx"].reshape(-1); d[1] = z["clip6/dy"].reshape(-1)[1]
np.savez(sys.argv[1], **z)' "$BATS_TEST_TMPDIR/elt.npz"
	run --separate-stderr "$PY" "$TOP/tests/elt_parity.py" "$BATS_TEST_TMPDIR"
	assert_failure
	assert_line --partial "clip6/dx: relative error"
}
