#!/usr/bin/env bats
# Hostile inputs: files built to make a reader allocate far more than they hold. Each must
# be refused (or skipped) with a clear message, with peak memory measured and bounded.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# peak_rss_kb FILE: the %M that /usr/bin/time -o FILE -f %M wrote
peak_rss_kb() {
	tail -n 1 "$1"
}

# The four decompression bombs of issue 14, each a few bytes to 32 KB claiming 16384x16384
# (1 GB of RGBX): a GIF screen, a GIF frame placed at 16000,16000, a 1-bit PNG, and an
# EXIF-rotated JPEG (rotation means a whole-image decode, --full-decode means full size).
make_bombs() {
	py '
import io, struct, zlib
from PIL import Image
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
pal = b"\0\0\0\xff\xff\xff"
def gif(sw, sh, left, top):  # one 1x1 frame: LZW clear, pixel 0, end
    frame = b"," + struct.pack("<HHHHB", left, top, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + struct.pack("<HHBBB", sw, sh, 0x80, 0, 0) + pal + frame + b";"
open("screen.gif", "wb").write(gif(16384, 16384, 0, 0))
open("far.gif", "wb").write(gif(1, 1, 16000, 16000))
z = zlib.compressobj(9)
row = b"\0" * (1 + 16384 // 8)
idat = b"".join(z.compress(row) for _ in range(16384)) + z.flush()
ihdr = struct.pack(">IIBBBBB", 16384, 16384, 1, 0, 0, 0, 0)
open("huge.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
b = io.BytesIO()
Image.new("RGB", (16, 16), (90, 120, 200)).save(b, "JPEG", quality=90)
j = b.getvalue()
i = 2
while j[i + 1] not in (0xC0, 0xC1, 0xC2):
    i += 2 + struct.unpack(">H", j[i + 2:i + 4])[0]
j = j[:i + 5] + struct.pack(">HH", 16384, 16384) + j[i + 9:]
exif = b"Exif\0\0II*\0" + struct.pack("<IHHHII", 8, 1, 0x0112, 3, 1, 6) + b"\0\0\0\0"
open("rotated.jpg", "wb").write(j[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + j[2:])
Image.new("RGB", (40, 30), (10, 200, 30)).save("ok.png")
'
	[ "$(stat -c %s screen.gif)" -eq 35 ] && [ "$(stat -c %s far.gif)" -eq 35 ]
	[ "$(stat -c %s huge.png)" -lt 40000 ]
}

@test "faults: pet-pack skips each decompression bomb, naming the limit, in under 64 MB" {
	make_bombs
	for bomb in screen.gif far.gif huge.png rotated.jpg; do
		run --separate-stderr /usr/bin/time -o rss -f %M pet-pack --full-decode -j 2 -s 32 ok.png "$bomb" -o out.npy
		assert_success
		[[ $stderr == *"pet-pack: skipped $bomb: image of 16"*"pixels is over the limit of 33554432 pixels"* ]] ||
			fail "$bomb: $stderr"
		[[ $stderr == *"1 of 2 images skipped"* ]] || fail "$bomb: $stderr"
		# 1 GB each without the limit; pet-pack's own few MB with it
		[ "$(peak_rss_kb rss)" -lt 65536 ] || fail "$bomb: peak RSS $(peak_rss_kb rss) KB"
		py 'assert np.load(sys.argv[1]).shape == (1, 32, 32, 3)' out.npy
	done
	run --separate-stderr pet-pack --strict -s 32 huge.png -o strict.npy
	assert_failure 1
	[[ $stderr == *"huge.png: image of 16384x16384 pixels is over the limit"* ]] || fail "$stderr"
	[ ! -e strict.npy ]
}

@test "faults: pet-pack --max-pixels sets the limit: at it decoded, one pixel over skipped" {
	py 'from PIL import Image
for f in ("a.png", "b.gif", "c.jpg"):
    Image.new("RGB", (100, 50), (200, 100, 50)).save(f)'
	run --separate-stderr pet-pack --max-pixels 5000 -s 8 a.png b.gif c.jpg -o out.npy
	assert_success
	[ -z "$stderr" ] || fail "$stderr"
	run --separate-stderr pet-pack --strict --max-pixels 4999 -s 8 a.png -o out.npy
	assert_failure 1
	[[ $stderr == *"a.png: image of 100x50 pixels is over the limit of 4999 pixels"* ]] || fail "$stderr"
	for f in b.gif c.jpg; do
		run --separate-stderr pet-pack --max-pixels 4999 -s 8 a.png $f -o out.npy
		assert_failure 1
		[[ $stderr == *"skipped $f: image of 100x50 pixels is over the limit of 4999 pixels"* ]] || fail "$stderr"
	done
	run --separate-stderr pet-pack --max-pixels 0 a.png -o out.npy
	assert_failure 2
}

# A checkpoint-like .npz whose second member is 256 MB of zeros deflated to about 256 KB.
make_npz_bomb() {
	py '
import io, zipfile
def npy(a):
    b = io.BytesIO(); np.save(b, a); return b.getvalue()
n = 256 << 20
hdr = npy(np.zeros(0, np.uint8)).replace(b"(0,)", b"(%d,)" % n)[:128]
hdr = hdr[:127] + b"\n"
with zipfile.ZipFile("bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a.npy", npy(np.arange(6, dtype=np.float32)))
    with z.open("junk.npy", "w", force_zip64=True) as m:
        m.write(hdr)
        zero = bytes(1 << 20)
        for _ in range(256):
            m.write(zero)
    z.writestr("b.npy", npy(np.arange(3, dtype=np.int64)))
assert np.load("bomb.npz")["junk"].shape == (n,)'
	[ "$(stat -c %s bomb.npz)" -lt 400000 ]
}

@test "faults: an unneeded 256 MB member of a 300 KB .npz is skipped unread, in under 64 MB" {
	UNIT=${PETCNN_BUILD:-$TOP/build}/tests
	make_npz_bomb
	run --separate-stderr /usr/bin/time -o rss -f %M "$UNIT/test_npz" --only bomb.npz a b
	assert_success
	assert_output $'a f4 6\nb i8 3'
	[ "$(peak_rss_kb rss)" -lt 65536 ] || fail "file: peak RSS $(peak_rss_kb rss) KB"
	# streamed (stdin: local headers only, no central directory) the same
	run --separate-stderr /usr/bin/time -o rss -f %M "$UNIT/test_npz" --only - b < bomb.npz
	assert_success
	assert_output 'b i8 3'
	[ "$(peak_rss_kb rss)" -lt 65536 ] || fail "stdin: peak RSS $(peak_rss_kb rss) KB"
}
