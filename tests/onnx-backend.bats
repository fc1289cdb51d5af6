#!/usr/bin/env bats
# ONNX's own backend tests (Debian's libonnx-testdata) for the ops issue 16 names, run end
# to end by tests/unit/test_onnx_backend.c: import, build, forward, compare with the
# suite's output (rtol 1e-3, atol 1e-7). Every case either passes or is refused with a
# message naming the file (and the node and its op); none fails and none crashes.
load helper

BUILD_DIR=${PETCNN_BUILD:-$TOP/build}

@test "onnx-backend: the issue's ops: passed 47, refused 81, none fails" {
	run --separate-stderr "$BUILD_DIR/tests/test_onnx_backend"
	# the refused cases and why, for whoever reads the test log
	echo "$output" | grep '^refused' | sed 's/^/# /' >&3
	assert_success
	refute_line --regexp '^FAIL'
	assert_line "passed 47, refused 81, failed 0"
	[ "$(echo "$output" | grep -c '^pass ')" = 47 ]
	# what an image network meets runs: 2-D convolutions and pools (explicit, SAME and
	# ceil pads, count_include_pad), batch norm, LRN, global pooling, Gemm, MatMul
	for c in test_conv_with_strides_and_asymmetric_padding test_averagepool_2d_pads_count_include_pad \
		test_maxpool_2d_ceil test_batchnorm_epsilon test_lrn test_globalaveragepool test_gemm_transposeB \
		test_matmul_2d test_basic_conv_with_padding test_maxpool_2d_same_lower test_flatten_axis1 \
		test_softmax_large_number test_identity; do
		assert_line --regexp "^pass +$c\$"
	done
	# and what it cannot hold is refused, saying why
	assert_line --regexp "^refused +test_maxpool_2d_dilations: node #0 \(MaxPool\): dilations"
	assert_line --regexp "^refused +test_averagepool_3d_default: .*5 dims"
	assert_line --regexp "^refused +test_concat_2d_axis_0: node #0 \(Concat\): concat over axis 0"
	assert_line --regexp "^refused +test_batchnorm_example_training_mode: 3 graph outputs"
	assert_line --regexp "^refused +test_maxpool_2d_uint8: input 'x' is UINT8"
}

@test "onnx-backend: a value 0.2% off fails its case, and an unknown case is refused" {
	run --separate-stderr "$BUILD_DIR/tests/test_onnx_backend" --perturb test_conv_with_strides_padding test_lrn
	assert_failure 1
	assert_line --regexp "^FAIL +test_conv_with_strides_padding: element 0 is "
	assert_line --regexp "^FAIL +test_lrn: element 0 is "
	assert_line "passed 0, refused 0, failed 2"
	run --separate-stderr "$BUILD_DIR/tests/test_onnx_backend" test_no_such_case
	assert_success
	assert_line --regexp "^refused +test_no_such_case: "
	assert_line "passed 0, refused 1, failed 0"
}
