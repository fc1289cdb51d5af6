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

@test "formats: numpy and bsdtar read zipw's zip64 records and its aligned members" {
	[ -x "$UNIT/test_npz" ] || fail "build the unit tests first (make unit): $UNIT/test_npz"
	run "$UNIT/test_npz" "$BATS_TEST_TMPDIR"
	assert_success
	run py '
import zipfile
for f, extra in (("model_zip64.npz", []), ("model_aligned.npz", ["huge"])):
    zf = zipfile.ZipFile(f)
    assert zf.testzip() is None, f  # every CRC-32
    z = np.load(f)
    assert z.files == ["conv1_1/weights1_1", "conv1_1/biases1_1", "step", "classes", "big", "pool/zeros_u1"] + extra, z.files
    assert np.array_equal(z["big"], (np.arange(300000) * 0.5).reshape(300, 1000))
    assert list(z["classes"]) == ["samoyed", "shiba_inu"]
    zip64 = {len(i.extra) for i in zf.infolist()}
    print(f, sorted(zip64))
h = np.load("model_aligned.npz")["huge"]
assert h.shape == ((17 << 20) + 3,) and np.array_equal(h, (np.arange((17 << 20) + 3) % 1001).astype("<f4"))
'
	assert_success
	# the central directory: zip64 extra fields of 28 bytes (sizes and offset) in one, none in the other
	assert_output "model_zip64.npz [28]
model_aligned.npz [0]"
	run bsdtar -tvf model_zip64.npz
	assert_success
	assert_line --index 0 --regexp '^-rw-r--r-- .* 3584 Jan  1  1980 conv1_1/weights1_1.npy$'
	[ ${#lines[@]} -eq 6 ]
}

@test "formats: 16-bit PNGs, gray and RGB, give their high byte, as Pillow does" {
	py '
import struct, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
def png16(path, a):  # uint16 [h, w] gray or [h, w, 3] RGB, written big-endian as PNG wants
    h, w = a.shape[:2]
    raw = b"".join(b"\0" + a[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0 if a.ndim == 2 else 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
rng = np.random.default_rng(7)
g = rng.integers(0, 65536, (6, 10)).astype(np.uint16)
g[0, :3] = (0x8000, 0x80ff, 0x7fff)
c = rng.integers(0, 65536, (6, 10, 3)).astype(np.uint16)
c[0, 0] = (0x8000, 0x00ff, 0xff00)
png16("g16.png", g)
png16("rgb16.png", c)'
	# the output size is the input size: no resampling, the decoded pixels themselves
	run --separate-stderr pet-pack -s 10x6 g16.png rgb16.png -o out.npy
	assert_success
	py '
from PIL import Image
im = np.load("out.npy")
# RGB: Pillow keeps the high byte. Gray: Pillow opens it as 32-bit "I" (exact values, which
# its convert("RGB") clips at 255); the high byte of those values is what we must give.
rgb = np.asarray(Image.open("rgb16.png").convert("RGB"))
assert im[1][0, 0].tolist() == [128, 0, 255], im[1][0, 0]
assert np.array_equal(im[1], rgb), (im[1], rgb)
g = np.asarray(Image.open("g16.png"))
assert g[0, 0] == 0x8000 and im[0][0, 0].tolist() == [128, 128, 128], im[0][0, 0]
assert np.array_equal(im[0], np.repeat((g >> 8).astype(np.uint8)[..., None], 3, axis=2)), (im[0], g >> 8)'
}
