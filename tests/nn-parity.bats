#!/usr/bin/env bats
# Parity with PyTorch (Debian's python3-torch): our logits, loss and every gradient, from our
# checkpoints, against torch in float64 to 1e-4 relative (tests/parity.py). The test
# program is built by `make unit` as build/tests/test_parity.

load helper

setup_file() {
	TEST_PARITY=${PETCNN_TEST_PARITY:-${PETCNN_BUILD:-$TOP/build}/tests/test_parity}
	[ -x "$TEST_PARITY" ] || make -C "$TOP" build/tests/test_parity >&2
}

@test "nn-parity: a tiny network of every layer kind and the default network at 64x64, dropout included, on every path the CPU has" {
	local isa
	for isa in $(isa_paths); do
		PETCNN_ISA=$isa run --separate-stderr "${PETCNN_TEST_PARITY:-${PETCNN_BUILD:-$TOP/build}/tests/test_parity}" "$BATS_TEST_TMPDIR"
		assert_success
		run --separate-stderr "$PY" "$TOP/tests/parity.py" "$BATS_TEST_TMPDIR/tiny" "$BATS_TEST_TMPDIR/default64"
		assert_success
		assert_line --partial "tiny: 13 tensors"
		assert_line --partial "default64: 15 tensors"
		rm -r "$BATS_TEST_TMPDIR/tiny" "$BATS_TEST_TMPDIR/default64"
	done
}

@test "nn-parity: the default network's forward pass at 224x224, on every path the CPU has" {
	local isa
	for isa in $(isa_paths); do
		PETCNN_ISA=$isa run --separate-stderr "${PETCNN_TEST_PARITY:-${PETCNN_BUILD:-$TOP/build}/tests/test_parity}" "$BATS_TEST_TMPDIR" 224
		assert_success
		rm -r "$BATS_TEST_TMPDIR/tiny" "$BATS_TEST_TMPDIR/default64"
		run --separate-stderr "$PY" "$TOP/tests/parity.py" "$BATS_TEST_TMPDIR/default224"
		assert_success
		assert_line --partial "default224: 3 tensors"
		rm -r "$BATS_TEST_TMPDIR/default224"
	done
}

@test "nn-parity: the comparison fails when a gradient is wrong" {
	run --separate-stderr "${PETCNN_TEST_PARITY:-${PETCNN_BUILD:-$TOP/build}/tests/test_parity}" "$BATS_TEST_TMPDIR"
	assert_success
	py 'z = dict(np.load(sys.argv[1])); z["grad/c2/weights1_2"] = z["grad/c2/weights1_2"] * 1.001
np.savez(sys.argv[1], **z)' "$BATS_TEST_TMPDIR/tiny/data.npz"
	run --separate-stderr "$PY" "$TOP/tests/parity.py" "$BATS_TEST_TMPDIR/tiny"
	assert_failure
	assert_line --partial "grad/c2/weights1_2: relative error"
}
