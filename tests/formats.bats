#!/usr/bin/env bats
# numpy reads what WE write: the C unit tests leave a .npy stream and two .npz files in a
# directory; numpy must load them, find the values the tests wrote, and (for .npy) get
# byte for byte what np.save itself writes for the same arrays.

load helper

UNIT=${PETCNN_BUILD:-$TOP/build}/tests

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "formats: numpy reads our .npy stream, byte-identical to np.save" {
	[ -x "$UNIT/test_npy" ] || fail "build the unit tests first (make unit): $UNIT/test_npy"
	run "$UNIT/test_npy" "$BATS_TEST_TMPDIR"
	assert_success
	run py '
import io
words = ["samoyed", "h\u00e9llo", "", "\u65e5\u672c", "shiba_inu"]
f = open("stream.npy", "rb")
n = 0
for line in open("manifest.txt"):
    dt, dims = line.split()
    shape = () if dims == "-" else tuple(int(d) for d in dims.split(","))
    start = f.tell()
    a = np.load(f)
    end = f.tell()
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    want = {"u1": lambda: ((i * 7 + 3) % 256).astype("u1"),
            "i4": lambda: (i * -123457 + 17).astype("<i4"),
            "i8": lambda: (i * 3000000000 - 7).astype("<i8"),
            "f4": lambda: (i - 3).astype("<f4") * np.float32(0.25),
            "f8": lambda: (i - 3).astype("<f8") * 0.1,
            "U": lambda: np.array([words[k % 5] for k in i] or [""], dtype="U")[:len(i)]}[dt]()
    want = want.reshape(shape)
    assert a.dtype == want.dtype, (line, a.dtype, want.dtype)
    assert a.shape == shape, (line, a.shape)
    assert np.array_equal(a, want), (line, a, want)
    # Byte-identical to what numpy writes for the same array.
    b = io.BytesIO()
    np.save(b, a)
    f.seek(start)
    assert f.read(end - start) == b.getvalue(), ("bytes differ", line)
    n += 1
assert f.read(1) == b"", "trailing bytes"
print("checked", n)
'
	assert_success
	assert_output "checked 42"
}

@test "formats: numpy reads our .npz, stored and deflated" {
	[ -x "$UNIT/test_npz" ] || fail "build the unit tests first (make unit): $UNIT/test_npz"
	run "$UNIT/test_npz" "$BATS_TEST_TMPDIR"
	assert_success
	for f in model.npz model_deflate.npz; do
		run py '
import zipfile
z = np.load(sys.argv[1])
assert z.files == ["conv1_1/weights1_1", "conv1_1/biases1_1", "step", "classes", "big", "pool/zeros_u1"], z.files
i = np.arange(864)
w = ((i % 17 - 8) / 16).astype("<f4").reshape(3, 3, 3, 32)
assert z["conv1_1/weights1_1"].dtype == np.float32 and np.array_equal(z["conv1_1/weights1_1"], w)
assert np.array_equal(z["conv1_1/biases1_1"], np.full(32, 0.5, "<f4"))
assert z["step"].dtype == np.int64 and z["step"].shape == () and z["step"] == 1234567890123
assert list(z["classes"]) == ["samoyed", "shiba_inu"] and z["classes"].dtype == "<U9"
assert np.array_equal(z["big"], (np.arange(300000) * 0.5).reshape(300, 1000))
assert z["pool/zeros_u1"].dtype == np.uint8 and not z["pool/zeros_u1"].any()
comp = {i.compress_type for i in zipfile.ZipFile(sys.argv[1]).infolist()}
print("ok", sorted(comp))
' "$f"
		assert_success
		if [ $f = model.npz ]; then assert_output "ok [0]"; else assert_output "ok [8]"; fi
	done
}
