#!/usr/bin/env bats
# Faults and hostile conditions that cut across programs: outputs that are not regular
# files, closed standard descriptors, a full disk, a run killed at any moment, values at
# the edge of a type, files that are not files, empty streams. Each must be a clear error
# or a correct result, never a crash or silent loss.

load helper

setup_file() {
	cd "$BATS_FILE_TMPDIR"
	"$PY" -c '
import numpy as np
r = np.random.default_rng(5)
with open("ds.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (6, 12, 10, 3), dtype=np.uint8))
    np.save(f, np.array([0, 1, 0, 1, 0, 1], dtype=np.int64))
    np.save(f, np.array(["cat", "dog"]))
'
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	D=$BATS_FILE_TMPDIR
}

teardown() {
	! mountpoint -q "$BATS_TEST_TMPDIR/mnt" || umount "$BATS_TEST_TMPDIR/mnt"
}

# A null device of our own when we may make one (root), so a regression replaces a test
# file and not the machine's /dev/null.
null_device() {
	mknod "$1" c 1 3 2>/dev/null || ln -s /dev/null "$1"
}

@test "faults: -o on a device writes into it and never replaces it" {
	mkdir w
	null_device w/dev
	run --separate-stderr cnn-apply --gray -o w/dev "$D/ds.npy"
	assert_success
	[ -c w/dev ] || [ -L w/dev ] || fail "the device was replaced: $(ls -l w/dev)"
	[ -c "$(readlink -f w/dev)" ] || fail "not a device any more: $(ls -lL w/dev)"
	[ "$(ls -A w)" = dev ] || fail "left behind: $(ls -A w)"
}

@test "faults: -o on a FIFO writes into it (a reader gets the data)" {
	mkfifo fifo
	cat fifo > got.npy &
	run --separate-stderr cnn-apply --gray -o fifo "$D/ds.npy"
	assert_success
	wait
	[ -p fifo ] || fail "the FIFO was replaced"
	run py 'a = np.load(sys.argv[1]); assert a.shape == (6, 12, 10, 1), a.shape' got.npy
	assert_success
}

@test "faults: -o through a symlink replaces the file it points to and keeps the link" {
	echo old > real
	ln -s real link
	run --separate-stderr cnn-apply --gray -o link "$D/ds.npy"
	assert_success
	[ -L link ] || fail "the link was replaced by a file"
	run py 'a = np.load(sys.argv[1]); assert a.shape == (6, 12, 10, 1)' real
	assert_success
}

@test "faults: -o on a directory is one clear error" {
	mkdir d
	run --separate-stderr cnn-apply --gray -o d "$D/ds.npy"
	assert_failure 1
	assert_output ''
	[[ $stderr == "cnn-apply: d: is a directory"* ]] || fail "$stderr"
}

@test "faults: a 250-byte output name works (its temporary stays within NAME_MAX)" {
	local name
	name=w/$(printf 'n%.0s' {1..250})
	mkdir w
	run --separate-stderr cnn-apply --gray -o "$name" "$D/ds.npy"
	assert_success
	[ -s "$name" ]
	[ "$(ls -A w | wc -l)" = 1 ] || fail "left behind: $(ls -A w)"
}

@test "faults: SIGKILL at any moment of a checkpoint save leaves no temporary behind" {
	# A model whose checkpoint takes a while to write, killed at several moments; in the
	# foreground (the background's own test is below).
	local model="c1=conv:3x3:8 fc=dense:4096 out=dense:K"
	mkdir w
	for delay in 0.3 0.6 0.9 1.2 1.5; do
		cnn-train -q --train "$D/ds.npy" -o w/m.npz --epochs 1000 --batch 3 --model "$model" \
			--checkpoint-foreground >/dev/null 2>&1 &
		sleep "$delay"
		kill -KILL $! 2>/dev/null || true
		wait $! 2>/dev/null || true
		[ -z "$(ls -A w | grep -v '^m\.npz$')" ] || fail "after SIGKILL at ${delay}s: $(ls -A w)"
	done
	# And what is there is a whole checkpoint.
	[ -e w/m.npz ] || fail "no checkpoint was ever completed"
	run py 'd = np.load(sys.argv[1]); assert any(k.startswith("fc/") for k in d.files), d.files' w/m.npz
	assert_success
}

@test "faults: a closed stdout is an error, never data lost" {
	run --separate-stderr bash -c 'tensor-info "$1" >&-' _ "$D/ds.npy"
	assert_failure 1
	[[ $stderr == *"tensor-info: write error on standard output"* ]] || fail "$stderr"
	run --separate-stderr bash -c 'cnn-apply --gray "$1" >&-' _ "$D/ds.npy"
	assert_failure 1
	[[ $stderr == *"cnn-apply: "* ]] || fail "$stderr"
}

@test "faults: with stdout closed, cnn-train's metrics never land in a file it opens" {
	run --separate-stderr bash -c 'cnn-train -q --train "$1" --epochs 5 --batch 3 --logdir runs -o m.npz --model "c1=conv:3x3:4 out=dense:K" >&-' _ "$D/ds.npy"
	assert_failure 1
	[[ $stderr == *"write error on standard output"* ]] || fail "$stderr"
	for f in runs/*/events.*; do
		run --separate-stderr tfevents-cat "$f"
		assert_success
	done
	[ -s m.npz ]
}

@test "faults: with stderr closed, messages never land in the data" {
	# One good JPEG and one truncated: pet-pack says "skipped" on stderr while writing -o.
	"$PY" -c '
from PIL import Image
Image.new("RGB", (20, 16), (200, 10, 10)).save("good.jpg", quality=90)
b = open("good.jpg", "rb").read()
open("bad.jpg", "wb").write(b[: len(b) // 2])
'
	printf '# classes: a b\n%s\t0\ta\n%s\t1\tb\n' "$PWD/good.jpg" "$PWD/bad.jpg" > list.tsv
	bash -c 'pet-pack -q -s 8 -l list.tsv -o out.npy 2>&-'
	run py 'f = open(sys.argv[1], "rb"); x = np.load(f); np.load(f); np.load(f)
assert x.shape == (1, 8, 8, 3), x.shape
assert f.read() == b"", "trailing bytes"' out.npy
	assert_success
}

@test "faults: --help and --version to a full device fail with a message" {
	for prog in tensor-info cnn-train pet-fetch; do
		run --separate-stderr "$prog" --help
		assert_success
		run --separate-stderr bash -c '"$1" --help > /dev/full' _ "$prog"
		assert_failure 1
		[[ $stderr == "$prog: write error on standard output"* ]] || fail "$prog: $stderr"
		run --separate-stderr bash -c '"$1" --version > /dev/full' _ "$prog"
		assert_failure 1
	done
}

# A checkpoint of 3 steps on ds.npy (6 images, batch 2) to resume from, and a variant of it
# with members replaced by python.
small_ckpt() {
	cnn-train -q --train "$D/ds.npy" -o m.npz --epochs 1 --batch 2 --lr 1e-3 --keep-conv 0.9 \
		--model "c1=conv:3x3:4 out=dense:K" > /dev/null
}

edit_ckpt() { # OUT 'python statements on dict d'
	py "d = dict(np.load(sys.argv[1]))
$2
np.savez(sys.argv[2], **d)" m.npz "$1"
}

@test "faults: --resume validates every number the checkpoint holds" {
	small_ckpt
	edit_ckpt neg.npz 'd["train/step"] = np.array(-5)'
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o out.npz --resume neg.npz --batch 2
	assert_failure 1
	[[ $stderr == "cnn-train: neg.npz: 'train/step' is -5, not in [0, "* ]] || fail "$stderr"
	edit_ckpt huge.npz 'd["train/step"] = np.array(2**62 - 1)'
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o out.npz --resume huge.npz --batch 2
	assert_failure 1
	[[ $stderr == *"huge.npz: has done 4611686018427387903 steps, more than --epochs 400 gives (1200)"* ]] || fail "$stderr"
	edit_ckpt lr.npz 'd["train/lr"] = np.array(float("nan"))'
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o out.npz --resume lr.npz --batch 2
	assert_failure 1
	[[ $stderr == *"lr.npz: 'train/lr' is nan, not in [0, 10]"* ]] || fail "$stderr"
	[ ! -e out.npz ]
}

@test "faults: a checkpoint declaring a huge input is refused before anything is allocated" {
	small_ckpt
	edit_ckpt big.npz 'd["model/input"] = np.array([16384, 16384, 3])'
	run --separate-stderr /usr/bin/time -f '%M' cnn-train -q --train "$D/ds.npy" -o out.npz --resume big.npz --batch 2
	assert_failure 1
	[[ $stderr == *"big.npz: the model takes 16384x16384 images, these are 12x10"* ]] || fail "$stderr"
	(( ${stderr##*$'\n'} < 100000 )) || fail "peak RSS ${stderr##*$'\n'} KB"
}

@test "faults: members no loader needs are skipped, not held (a zip bomb costs nothing)" {
	small_ckpt
	# 400 MB of zeros, deflated to about 400 KB, after the model's members.
	py 'import zipfile
z = zipfile.ZipFile(sys.argv[1], "a", zipfile.ZIP_DEFLATED)
with z.open("junk.npy", "w", force_zip64=True) as f:
    np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (400000000,)})
    for _ in range(400): f.write(bytes(1 << 20)[:1000000])
' m.npz
	run --separate-stderr /usr/bin/time -f '%M' cnn-eval -m m.npz "$D/ds.npy"
	assert_success
	(( ${stderr##*$'\n'} < 100000 )) || fail "peak RSS ${stderr##*$'\n'} KB"
	run --separate-stderr /usr/bin/time -f '%M' cnn-train -q --train "$D/ds.npy" -o out.npz --resume m.npz --batch 2 --epochs 2
	assert_success
	(( ${stderr##*$'\n'} < 100000 )) || fail "peak RSS ${stderr##*$'\n'} KB"
}

@test "faults: --resume refuses other settings or another training set, unless --allow-changes" {
	small_ckpt
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o out.npz --resume m.npz --batch 2 --lr 0.5
	assert_failure 1
	[[ $stderr == *"m.npz: was trained with --lr 0.001, not 0.5"* ]] || fail "$stderr"
	[[ $stderr == *"add --allow-changes"* ]] || fail "$stderr"
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o out.npz --resume m.npz --batch 2 --seed 9
	assert_failure 1
	[[ $stderr == *"was trained with --seed 1, not 9"* ]] || fail "$stderr"
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o out.npz --resume m.npz --batch 2 --model "c1=conv:3x3:8 out=dense:K"
	assert_failure 1
	[[ $stderr == *"a model cannot change on resume"* ]] || fail "$stderr"
	# Another training set of the same size and shape.
	py 'f = open(sys.argv[1], "rb"); x = np.load(f); y = np.load(f); c = np.load(f)
with open(sys.argv[2], "wb") as g:
    np.save(g, 255 - x); np.save(g, y); np.save(g, c)' "$D/ds.npy" other.npy
	run --separate-stderr cnn-train -q --train other.npy -o out.npz --resume m.npz --batch 2
	assert_failure 1
	[[ $stderr == *"was trained on another training set than other.npy"* ]] || fail "$stderr"
	[ ! -e out.npz ]
	# Options not given take the checkpoint's values: the same bytes as an uninterrupted run.
	cnn-train -q --train "$D/ds.npy" -o full.npz --epochs 3 --batch 2 --lr 1e-3 --keep-conv 0.9 \
		--model "c1=conv:3x3:4 out=dense:K" > /dev/null
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o m.npz --resume m.npz --batch 2 --epochs 3
	assert_success
	cmp full.npz m.npz
	# --allow-changes goes on with the new value, and says so.
	run --separate-stderr cnn-train -q --train other.npy -o out.npz --resume m.npz --batch 2 --epochs 4 --lr 0.5 --allow-changes
	assert_success
	[[ $stderr == *"resuming with --lr 0.5 (it was 0.001)"* && $stderr == *"resuming on another training set"* ]] || fail "$stderr"
	run py 'd = np.load(sys.argv[1]); assert float(d["train/lr"]) == 0.5' out.npz
	assert_success
}

@test "faults: --batch above the training set's size is clamped (buffers sized for the set)" {
	run --separate-stderr /usr/bin/time -f '%M' cnn-train -q --train "$D/ds.npy" -o m.npz --epochs 2 --batch 100000 \
		--model "c1=conv:3x3:4 out=dense:K"
	assert_success
	[[ $stderr == *"--batch 100000 is more than the 6 training images: using 6"* ]] || fail "$stderr"
	(( ${stderr##*$'\n'} < 100000 )) || fail "peak RSS ${stderr##*$'\n'} KB"
}

@test "faults: a closed metrics pipe (SIGPIPE) or SIGHUP stops training with a checkpoint" {
	bash -c 'cnn-train -q --train "$1" -o p.npz --epochs 100000 --batch 2 --log-every 1 --model "c1=conv:3x3:4 out=dense:K" | head -n 3 > /dev/null; echo "${PIPESTATUS[0]}" > rc' _ "$D/ds.npy"
	[ "$(cat rc)" = 141 ] || fail "exit status $(cat rc)"
	run py 'z = np.load(sys.argv[1]); assert int(z["train/step"]) >= 1' p.npz
	assert_success
	cnn-train -q --train "$D/ds.npy" -o h.npz --epochs 100000 --batch 2 --model "c1=conv:3x3:4 out=dense:K" > /dev/null &
	local pid=$! rc=0
	for _ in $(seq 600); do [ -e h.npz ] && break; sleep 0.1; done
	kill -HUP $pid
	wait $pid || rc=$?
	[ "$rc" = 129 ] || fail "exit status $rc"
	run py 'z = np.load(sys.argv[1]); assert int(z["train/step"]) >= 3' h.npz
	assert_success
}

@test "faults: cnn-eval on no images is an error; on no labelled image it says so, never 'accuracy 0'" {
	small_ckpt
	py 'with open(sys.argv[1], "wb") as f:
    np.save(f, np.zeros((0, 12, 10, 3), np.uint8)); np.save(f, np.zeros(0, np.int64)); np.save(f, np.array(["cat", "dog"]))
with open(sys.argv[2], "wb") as f:
    np.save(f, np.zeros((3, 12, 10, 3), np.uint8)); np.save(f, np.full(3, -1, np.int64)); np.save(f, np.array(["cat", "dog"]))' none.npy unlabelled.npy
	run --separate-stderr cnn-eval -m m.npz none.npy
	assert_failure 1
	assert_output ''
	[[ $stderr == "cnn-eval: none.npy: no images to evaluate" ]] || fail "$stderr"
	run --separate-stderr cnn-eval -m m.npz --predictions p.tsv unlabelled.npy
	assert_success
	[[ $stderr == *"unlabelled.npy: no image is labelled: predictions only, no accuracy"* ]] || fail "$stderr"
	assert_line 'accuracy -'
	refute_output --partial 'accuracy 0'
	[ "$(grep -vc '^#' p.tsv)" -ge 3 ]
	run --separate-stderr cnn-eval -m m.npz --format tsv unlabelled.npy
	assert_success
	refute_output --partial 'eval/Accuracy'
}

@test "tfevents-write: a histogram of +-DBL_MAX (line or .npy) puts them in the outer buckets" {
	echo '1 h hist 1.7976931348623157e308 -1.7976931348623157e308 1' > in.txt
	py 'np.save(sys.argv[1], np.array([np.finfo(np.float64).max, -np.finfo(np.float64).max, 1.0]))' big.npy
	echo '2 h hist big.npy' >> in.txt
	run --separate-stderr tfevents-write --logdir runs < in.txt
	assert_success
	run --separate-stderr tfevents-cat runs
	assert_success
	[ "$(echo "$output" | grep -c $'\thistogram\t')" = 2 ] || fail "$output"
	# The last bucket ends at DBL_MAX and holds it; -DBL_MAX is in the one below -1e20*0.99.
	echo "$output" | grep $'\thistogram\t' | while read -r line; do
		[[ $line == *"num=3 min=-1.79769313e+308 max=1.79769313e+308 "* ]] || fail "$line"
		[[ $line == *" -9.92077562e+19:1 "* ]] || fail "-DBL_MAX not in the first bucket: $line"
		[[ $line == *" 1.79769313e+308:1" ]] || fail "DBL_MAX not in the last bucket: $line"
	done
}

@test "tfevents-write: a file named on a line must be a regular file: /dev/zero, a FIFO refused at once" {
	mkfifo fifo
	ln -s fifo fifo.npy
	for line in '1 i image /dev/zero' '1 i image fifo' '1 h hist fifo.npy'; do
		echo "$line" > in.txt
		# No writer ever opens the FIFO: a reader that waited would hang until the timeout.
		run --separate-stderr timeout 20 tfevents-write --logdir runs < in.txt
		assert_failure 1
		[[ $stderr == "tfevents-write: line 1: "*": not a regular file" ]] || fail "'$line': $stderr"
	done
}

@test "tfevents-write: a file over the 1 GiB cap is refused before it is read" {
	truncate -s 1100M big.png
	echo '1 i image big.png' > in.txt
	run --separate-stderr timeout 20 tfevents-write --logdir runs < in.txt
	assert_failure 1
	[[ $stderr == *"big.png: larger than 1073741824 bytes"* ]] || fail "$stderr"
}

# Lines of 3 kB text until the writer fails; then the file must end on a whole record.
full_disk_check() {
	local dir=$1
	assert_failure 1
	[[ $stderr == "tfevents-write: $dir/events.out.tfevents."*": write: $2"* ]] || fail "$stderr"
	f=$(ls "$dir"/events.out.tfevents.*)
	"$PY" "$TOP/tests/tfrecord.py" "$f" recs || fail "torn record left in $f"
	run --separate-stderr tfevents-cat "$f"
	assert_success
	[ "$(echo "$output" | grep -c $'\ttext\t')" -ge 2 ] || fail "records before the failure lost: $output"
}

@test "tfevents-write: past a file-size limit the event file is cut back to its last whole record" {
	x=$(printf '%03000d' 0)
	for i in $(seq 1 40); do echo "$i t text $x"; done > in.txt
	# 16 kB: a few records fit, one is torn by the limit (EFBIG, SIGXFSZ ignored).
	run --separate-stderr bash -c 'ulimit -f 16; exec tfevents-write --logdir runs < in.txt'
	full_disk_check runs "File too large"
}

@test "tfevents-write: on a full file system the event file is cut back to its last whole record" {
	[ "$(id -u)" = 0 ] || fail "mounting a small tmpfs needs root"
	mkdir mnt
	mount -t tmpfs -o size=64k tmpfs mnt || fail "cannot mount a tmpfs here (the test needs root and mount)"
	x=$(printf '%03000d' 0)
	for i in $(seq 1 100); do echo "$i t text $x"; done > in.txt
	run --separate-stderr tfevents-write --logdir mnt < in.txt
	cp mnt/events.out.tfevents.* . 2>/dev/null
	umount mnt
	mv events.out.tfevents.* mnt/
	full_disk_check mnt "No space left on device"
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

@test "faults: a full disk under --snapshots leaves whole arrays only, and no empty file" {
	mkdir mnt
	mount -t tmpfs -o size=64k tmpfs mnt || fail "cannot mount a tmpfs here (the test needs root and mount)"
	# Every step's maps (about 2 KB each) fill 64 KB within a few dozen steps.
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o m.npz --epochs 1000 --batch 2 \
		--image-every 1 --snapshots mnt/s.npy --model "c1=conv:3x3:4 p1=maxpool:2x2 out=dense:K"
	assert_failure 1
	[[ $stderr == *"mnt/s.npy: write error: No space left on device"* ]] || fail "$stderr"
	run py 'f = open(sys.argv[1], "rb"); n = 0
import os
end = os.path.getsize(sys.argv[1])
while f.tell() < end:
    a = np.load(f); assert a.ndim == 4 and a.dtype == np.float32; n += 1
assert n >= 2, n
print(n)' mnt/s.npy
	assert_success
	# The disk already full: the first write fails, and no empty stream is left behind.
	rm mnt/s.npy
	dd if=/dev/zero of=mnt/fill bs=1k count=64 2>/dev/null || true
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o m2.npz --epochs 2 --batch 2 \
		--image-every 1 --snapshots mnt/s.npy --model "c1=conv:3x3:4 p1=maxpool:2x2 out=dense:K"
	assert_failure 1
	[ ! -e mnt/s.npy ] || fail "left: $(ls -l mnt/s.npy)"
}

@test "faults: a checkpoint written around the page cache onto a full disk fails cleanly, leaving nothing" {
	mkdir mnt
	mount -t tmpfs -o size=40m tmpfs mnt || fail "cannot mount a tmpfs here (the test needs root and mount)"
	# ~94 MB with Adam's moments: above npz's O_DIRECT threshold (64 MiB), so the direct
	# writes (tmpfs takes them) meet ENOSPC part way; the file had no name yet
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o mnt/m.npz --epochs 1 --batch 2 \
		--model "c1=conv:3x3:8 fc=dense:8192 out=dense:K"
	assert_failure 1
	[[ $stderr == *"mnt/m.npz: write error: No space left on device"* ]] || fail "$stderr"
	[ -z "$(ls -A mnt)" ] || fail "left: $(ls -lA mnt)"
	# With room, the same run writes a checkpoint numpy reads whole.
	umount mnt
	mount -t tmpfs -o size=200m tmpfs mnt
	cnn-train -q --train "$D/ds.npy" -o mnt/m.npz --epochs 1 --batch 2 \
		--model "c1=conv:3x3:8 fc=dense:8192 out=dense:K" > /dev/null
	run py 'd = np.load(sys.argv[1]); print(sum(d[k].nbytes for k in d.files) > 64 << 20, [d[k].shape for k in d.files if k.startswith("fc/w")])' mnt/m.npz
	assert_success
	assert_output "True [(960, 8192)]"
}

@test "faults: background checkpoints: SIGKILL at any moment leaves a complete checkpoint of some step, and the writing stops" {
	# a checkpoint after every step, each ~50 MB with Adam's moments, so the writer is
	# caught at work; the file is replaced only by a complete one
	local model="c1=conv:3x3:8 fc=dense:4096 out=dense:K" steps=""
	mkdir w
	for delay in 0.4 0.7 1.0 1.3 1.6 1.9; do
		cnn-train -q --train "$D/ds.npy" -o w/m.npz --epochs 100000 --batch 3 --model "$model" \
			--checkpoint-every 1s --checkpoint-background >/dev/null 2>&1 &
		sleep "$delay"
		kill -KILL $! 2>/dev/null || true
		wait $! 2>/dev/null || true
		local before
		before=$(stat -c '%i %Y' w/m.npz 2>/dev/null || true)
		# the writer dies with the run: nothing lands after the kill
		sleep 0.5
		[ "$(stat -c '%i %Y' w/m.npz 2>/dev/null || true)" = "$before" ] || fail "written after SIGKILL at ${delay}s"
		# SIGKILL can land in one window, between naming the finished, synced file and
		# renaming it (two system calls): then it stays whole under its hidden name
		local extra
		extra=$(ls -A w | grep -v '^m\.npz$' || true)
		if [ -n "$extra" ]; then
			[[ $extra =~ ^\.m\.npz\.[A-Za-z0-9]{6}$ ]] || fail "after SIGKILL at ${delay}s: $(ls -A w)"
			py 'z = np.load(sys.argv[1]); [z[k] for k in z.files]' "w/$extra" ||
				fail "after SIGKILL at ${delay}s: $extra is not a whole checkpoint"
			rm -f "w/$extra"
		fi
		[ -e w/m.npz ] || continue
		run py '
z = np.load(sys.argv[1])
names = [k for k in z.files if not k.startswith(("adam/", "train/", "model/", "classes"))]
assert names and all("adam/m/" + k in z.files and "adam/v/" + k in z.files for k in names), z.files
for k in z.files: z[k]
print(int(z["train/step"]))' w/m.npz
		assert_success
		steps="$steps $output"
	done
	[ -n "$steps" ] || fail "no checkpoint was ever completed"
	# and the last one resumes
	run --separate-stderr cnn-train -q --train "$D/ds.npy" -o w/m.npz --epochs 100000 --batch 3 --model "$model" \
		--resume w/m.npz --stop-after $(( ${steps##* } + 1 ))
	assert_success
}
