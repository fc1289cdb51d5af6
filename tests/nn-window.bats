#!/usr/bin/env bats
# The window layers (grouped and depthwise convolution with explicit asymmetric pads, max and
# average pooling with ceil mode and count_include_pad, global average pooling) against
# PyTorch in float64 (tests/window_ref.py), from the cases build/tests/test_window writes.

load helper

setup_file() {
	TEST_WINDOW=${PETCNN_TEST_WINDOW:-${PETCNN_BUILD:-$TOP/build}/tests/test_window}
	[ -x "$TEST_WINDOW" ] || make -C "$TOP" build/tests/test_window >&2
}

@test "nn-window: grouped, depthwise and padded convolutions, pools with ceil mode and pads, global pooling: outputs and gradients match torch" {
	run --separate-stderr "${PETCNN_TEST_WINDOW:-${PETCNN_BUILD:-$TOP/build}/tests/test_window}" "$BATS_TEST_TMPDIR"
	assert_success
	run --separate-stderr "$PY" "$TOP/tests/window_ref.py" "$BATS_TEST_TMPDIR"
	assert_success
	assert_line "window: 27 cases, 86 tensors, 0 failed"
}

@test "nn-window: the comparison fails when a gradient or an output size is wrong" {
	run --separate-stderr "${PETCNN_TEST_WINDOW:-${PETCNN_BUILD:-$TOP/build}/tests/test_window}" "$BATS_TEST_TMPDIR"
	assert_success
	py 'z = dict(np.load(sys.argv[1])); z["dw"] = z["dw"] * 1.001
np.savez(sys.argv[1], **z)' "$BATS_TEST_TMPDIR/dw_s2.npz"
	py 'z = dict(np.load(sys.argv[1])); z["din"][0, 4, 4, 1] += 0.01
np.savez(sys.argv[1], **z)' "$BATS_TEST_TMPDIR/avgincl_drop.npz"
	run --separate-stderr "$PY" "$TOP/tests/window_ref.py" "$BATS_TEST_TMPDIR"
	assert_failure
	assert_line --partial "dw_s2: dw: relative error"
	assert_line --partial "avgincl_drop: din: relative error"
	assert_line "window: 27 cases, 86 tensors, 2 failed"
	# our ceil rule is torch's: a window starting in the padding is not ours either
	py 'z = dict(np.load(sys.argv[1])); m = z["meta"]; m[16] += 1; z["out"] = np.zeros((2, 4, 3, 2), np.float32)
np.savez(sys.argv[1], **z)' "$BATS_TEST_TMPDIR/max_drop.npz"
	run --separate-stderr "$PY" "$TOP/tests/window_ref.py" "$BATS_TEST_TMPDIR"
	assert_failure
	[[ $stderr == *"torch pools to (3, 3), we to (4, 3)"* ]] || fail "stderr: $stderr"
}
