#!/usr/bin/env bats
# pet-pack on a small Pet folder made by Pillow (tests/fixtures/mkpets.py: PNG and GIF under
# .jpg names, grayscale, CMYK, EXIF-rotated, truncated, extraneous bytes), with Pillow as the
# reference for every pixel.
load helper

setup_file() {
	export DATA=$BATS_FILE_TMPDIR/pets
	"$PY" "$FIXTURES/mkpets.py" "$DATA"
	pet-split "$DATA" -q --breeds samoyed,shiba_inu,Abyssinian --test 0.25 --seed 1 -o "$BATS_FILE_TMPDIR/lists"
	pet-split "$DATA" -q > "$BATS_FILE_TMPDIR/all.tsv"
}

# compare NPY IMAGE... [-- OPTIONS]: each packed image against Pillow (EXIF transposed,
# convert RGB, resize BILINEAR, which is antialiased when reducing); prints "mad max".
pillow_diff() {
	py '
import os
from PIL import Image, ImageOps
npy, w, h, fit, paths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
f = open(npy, "rb"); a = np.load(f)
assert a.shape == (len(paths), h, w, 3), a.shape
d = []
for i, p in enumerate(paths):
    im = Image.open(p)
    if os.environ.get("DRAFT") and im.format == "JPEG":
        im.draft("RGB", (w, h) if im.getexif().get(0x0112, 1) < 5 else (h, w))
    im = ImageOps.exif_transpose(im).convert("RGB")
    sw, sh = im.size
    if fit == "crop":
        s = max(w / sw, h / sh); bw, bh = w / s, h / s
        x0, y0 = (sw - bw) / 2, (sh - bh) / 2
        box = (max(x0, 0), max(y0, 0), min(x0 + bw, sw), min(y0 + bh, sh))
        ref = np.asarray(im.resize((w, h), Image.BILINEAR, box=box))
    elif fit == "pad":
        s = min(w / sw, h / sh); dw, dh = max(1, round(sw * s)), max(1, round(sh * s))
        canvas = Image.new("RGB", (w, h)); canvas.paste(im.resize((dw, dh), Image.BILINEAR), ((w - dw) // 2, (h - dh) // 2))
        ref = np.asarray(canvas)
    else:
        ref = np.asarray(im.resize((w, h), Image.BILINEAR))
    d.append(np.abs(a[i].astype(int) - ref))
d = np.stack(d)
print("%.4f %d" % (d.mean(), d.max()))' "$@"
}

@test "pet-pack: --help, --version, bad option" {
	check_conventions pet-pack
	run --separate-stderr pet-pack --size 0 x.jpg
	assert_failure 2
	run --separate-stderr pet-pack --fit squash x.jpg
	assert_failure 2
}

@test "pet-pack: numpy reads images u1 [N,H,W,3], labels i8, classes; skips reported" {
	run --separate-stderr pet-pack -q -s 40x30 -o "$BATS_TEST_TMPDIR/all.npy" < "$BATS_FILE_TMPDIR/all.tsv"
	assert_success
	assert_output ''
	# the truncated JPEG is the one skip; the PNG, GIF, gray, CMYK and odd JPEGs all pack
	[[ $stderr == *"skipped $DATA/images/samoyed_9.jpg: truncated or corrupt JPEG"* ]] || fail "$stderr"
	[[ $stderr == *"pet-pack: 1 of 47 images skipped"* ]] || fail "$stderr"
	[ "$(grep -c skipped <<< "$stderr")" = 2 ]
	py '
f = open(sys.argv[1], "rb")
a, l, c = np.load(f), np.load(f), np.load(f)
assert f.read() == b""
rows = [r.rstrip("\n").split("\t") for r in open(sys.argv[2]) if not r.startswith("#")]
rows = [r for r in rows if not r[0].endswith("samoyed_9.jpg")]
assert a.dtype == np.uint8 and a.shape == (len(rows), 30, 40, 3), (a.dtype, a.shape)
assert l.dtype == np.int64 and list(l) == [int(r[1]) for r in rows]
assert list(c) == ["Abyssinian", "Bengal", "samoyed", "shiba_inu"], c
assert a.reshape(len(rows), -1).std(axis=1).min() > 5   # real pictures, not blanks
' "$BATS_TEST_TMPDIR/all.npy" "$BATS_FILE_TMPDIR/all.tsv"
}

@test "pet-pack: list on stdin, --list FILE and -o FILE give the same bytes" {
	pet-pack -q -s 32 < "$BATS_FILE_TMPDIR/lists/test.tsv" > "$BATS_TEST_TMPDIR/a.npy"
	pet-pack -q -s 32 -l "$BATS_FILE_TMPDIR/lists/test.tsv" > "$BATS_TEST_TMPDIR/b.npy"
	pet-pack -q -s 32 -l - -o "$BATS_TEST_TMPDIR/c.npy" < "$BATS_FILE_TMPDIR/lists/test.tsv"
	cmp "$BATS_TEST_TMPDIR/a.npy" "$BATS_TEST_TMPDIR/b.npy"
	cmp "$BATS_TEST_TMPDIR/a.npy" "$BATS_TEST_TMPDIR/c.npy"
	[ -z "$(ls -A "$BATS_TEST_TMPDIR" | grep pet-pack)" ]   # no staging file left
}

@test "pet-pack: a pipe, a file on stdout (even past other bytes, or appended) and -o give the same stream" {
	# a regular file takes the images in place and their header last; a pipe is staged
	pet-pack -q -s 24 < "$BATS_FILE_TMPDIR/all.tsv" 2>/dev/null | cat > "$BATS_TEST_TMPDIR/pipe.npy"
	pet-pack -q -s 24 < "$BATS_FILE_TMPDIR/all.tsv" > "$BATS_TEST_TMPDIR/file.npy" 2>/dev/null
	cmp "$BATS_TEST_TMPDIR/pipe.npy" "$BATS_TEST_TMPDIR/file.npy"
	{ printf 'abc'; pet-pack -q -s 24 < "$BATS_FILE_TMPDIR/all.tsv" 2>/dev/null; } > "$BATS_TEST_TMPDIR/after.npy"
	tail -c +4 "$BATS_TEST_TMPDIR/after.npy" | cmp - "$BATS_TEST_TMPDIR/file.npy"
	printf 'abc' > "$BATS_TEST_TMPDIR/append.npy"
	pet-pack -q -s 24 < "$BATS_FILE_TMPDIR/all.tsv" >> "$BATS_TEST_TMPDIR/append.npy" 2>/dev/null
	tail -c +4 "$BATS_TEST_TMPDIR/append.npy" | cmp - "$BATS_TEST_TMPDIR/file.npy"
	# a failure half-way leaves a file on stdout as it found it
	{ printf "abc"; pet-pack -q -s 24 --strict < "$BATS_FILE_TMPDIR/all.tsv" || echo $? > "$BATS_TEST_TMPDIR/rc"; } \
		> "$BATS_TEST_TMPDIR/strict.npy" 2> "$BATS_TEST_TMPDIR/err"
	[ "$(cat "$BATS_TEST_TMPDIR/rc")" = 1 ]
	grep -q "samoyed_9.jpg: truncated or corrupt JPEG" "$BATS_TEST_TMPDIR/err"
	[ "$(cat "$BATS_TEST_TMPDIR/strict.npy")" = abc ]
}

@test "pet-pack: -j 1, -j 2 and -j 3 give identical bytes" {
	pet-pack -q -j 1 -s 48 < "$BATS_FILE_TMPDIR/all.tsv" > "$BATS_TEST_TMPDIR/1.npy" 2>/dev/null
	pet-pack -q -j 2 -s 48 < "$BATS_FILE_TMPDIR/all.tsv" > "$BATS_TEST_TMPDIR/2.npy" 2>/dev/null
	pet-pack -q -j 3 -s 48 < "$BATS_FILE_TMPDIR/all.tsv" > "$BATS_TEST_TMPDIR/3.npy" 2>/dev/null
	cmp "$BATS_TEST_TMPDIR/1.npy" "$BATS_TEST_TMPDIR/2.npy"
	cmp "$BATS_TEST_TMPDIR/1.npy" "$BATS_TEST_TMPDIR/3.npy"
}

@test "pet-pack: pixels agree with Pillow's antialiased resize (stretch, crop, pad)" {
	# every usable image: JPEG, PNG and GIF under .jpg names, grayscale, CMYK, EXIF-rotated,
	# extraneous bytes; reduced (to 48x40) and enlarged (to 300x280)
	mapfile -t imgs < <(ls "$DATA"/images/*.jpg | grep -v samoyed_9)
	for size in 48x40 300x280; do
		for fit in stretch crop pad; do
			pet-pack -q --full-decode -s $size --fit $fit "${imgs[@]}" > "$BATS_TEST_TMPDIR/p.npy"
			read -r mad max < <(pillow_diff "$BATS_TEST_TMPDIR/p.npy" ${size%x*} ${size#*x} $fit "${imgs[@]}")
			echo "$size $fit: mean abs diff $mad, max $max"
			# Pillow's filter with 14-bit weights where Pillow has 22: a rounding step
			# flips now and then. Tolerance: mean abs diff <= 0.05 (of 255), max 2.
			awk -v m=$mad -v x=$max 'BEGIN { exit !(m <= 0.05 && x <= 2) }' || fail "$size $fit: $mad $max"
		done
	done
	# default: a JPEG at least twice the size is decoded at 1/2, 1/4 or 1/8 scale, as
	# Pillow's Image.draft() does: against draft + resize, the same tolerance
	pet-pack -q -s 24 "${imgs[@]}" > "$BATS_TEST_TMPDIR/p.npy"
	read -r mad max < <(DRAFT=1 pillow_diff "$BATS_TEST_TMPDIR/p.npy" 24 24 stretch "${imgs[@]}")
	echo "scaled decoding: mean abs diff $mad, max $max"
	awk -v m=$mad -v x=$max 'BEGIN { exit !(m <= 0.05 && x <= 2) }' || fail "scaled decoding: $mad $max"
}

@test "pet-pack: grayscale, CMYK and EXIF-rotated JPEGs come out RGB and upright" {
	pet-pack -q --full-decode -s 64 "$DATA/images/samoyed_2.jpg" "$DATA/images/shiba_inu_3.jpg" \
		"$DATA/images/shiba_inu_6.jpg" > "$BATS_TEST_TMPDIR/p.npy"
	py '
from PIL import Image
f = open(sys.argv[1], "rb"); a, l, c = np.load(f), np.load(f), np.load(f)
assert a.shape == (3, 64, 64, 3) and list(l) == [-1, -1, -1] and c.shape == (0,)
g = a[0].astype(int)
assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()   # gray -> R = G = B
ref = np.asarray(Image.open(sys.argv[2]).convert("RGB").resize((64, 64), Image.BILINEAR), dtype=int)
assert np.abs(a[1] - ref).mean() < 0.05, "CMYK"   # tolerance as for every resize below
assert np.abs(a[1].astype(int) - 255 + ref).mean() > 20, "CMYK not inverted twice"
raw = Image.open(sys.argv[3]); assert raw.getexif()[0x0112] == 6
up = np.asarray(raw.convert("RGB").transpose(Image.ROTATE_270).resize((64, 64), Image.BILINEAR), dtype=int)
assert np.abs(a[2] - up).mean() < 0.05, "orientation 6 means rotate 90 degrees clockwise"
' "$BATS_TEST_TMPDIR/p.npy" "$DATA/images/shiba_inu_3.jpg" "$DATA/images/shiba_inu_6.jpg"
}

@test "pet-pack: --strict, bad lists and unreadable files: errors naming the file, nothing written" {
	run --separate-stderr pet-pack -q --strict -o "$BATS_TEST_TMPDIR/x.npy" < "$BATS_FILE_TMPDIR/all.tsv"
	assert_failure 1
	[[ $stderr == *"samoyed_9.jpg: truncated or corrupt JPEG"* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/x.npy" ]
	run --separate-stderr pet-pack -q --strict "$DATA/images/Abyssinian_100.mat"
	assert_failure 1
	assert_output ''
	[[ $stderr == *"Abyssinian_100.mat: not an image"* ]] || fail "$stderr"
	# nothing usable at all: an error, not an empty dataset
	run --separate-stderr pet-pack -q "$DATA/images/samoyed_9.jpg" "$BATS_TEST_TMPDIR/none.jpg"
	assert_failure 1
	assert_output ''
	[[ $stderr == *"none.jpg: No such file"* ]] || fail "$stderr"
	printf '# classes: a b\n/x.jpg\t0\ta\n/y.jpg\t0\tb\n' > "$BATS_TEST_TMPDIR/clash.tsv"
	run --separate-stderr pet-pack -q -l "$BATS_TEST_TMPDIR/clash.tsv"
	assert_failure 1
	[[ $stderr == *"clash.tsv:3: label 0 is 'a'"* ]] || fail "$stderr"
	printf '/x.jpg\tzero\tb\n' > "$BATS_TEST_TMPDIR/bad.tsv"
	run --separate-stderr pet-pack -q < "$BATS_TEST_TMPDIR/bad.tsv"
	assert_failure 1
	assert_output ''
	[[ $stderr == *"<stdin>:1: bad label"* ]] || fail "$stderr"
	run --separate-stderr pet-pack -q < /dev/null
	assert_failure 1
	run --separate-stderr pet-pack -q -o "$BATS_TEST_TMPDIR/no/such/x.npy" "$DATA/images/samoyed_1.jpg"
	assert_failure 1
	[[ $stderr == *"no/such/x.npy: cannot create: No such file"* ]] || fail "$stderr"
}

@test "pet-pack: a pipe with nowhere to stage: an error naming the place, nothing written" {
	{ TMPDIR=$BATS_TEST_TMPDIR/missing pet-pack -q -s 24 "$DATA/images/samoyed_1.jpg" || echo $? > "$BATS_TEST_TMPDIR/rc"; } \
		2> "$BATS_TEST_TMPDIR/err" | cat > "$BATS_TEST_TMPDIR/out"
	[ "$(cat "$BATS_TEST_TMPDIR/rc")" = 1 ]
	grep -q "^pet-pack: $BATS_TEST_TMPDIR/missing/pet-pack\..*: cannot create a staging file there: No such file" \
		"$BATS_TEST_TMPDIR/err" || fail "$(cat "$BATS_TEST_TMPDIR/err")"
	[ ! -s "$BATS_TEST_TMPDIR/out" ]
	# an empty TMPDIR means /tmp, as for mktemp
	TMPDIR= pet-pack -q -s 24 "$DATA/images/samoyed_1.jpg" | cat > "$BATS_TEST_TMPDIR/out"
	py 'assert np.load(open(sys.argv[1], "rb")).shape == (1, 24, 24, 3)' "$BATS_TEST_TMPDIR/out"
}

@test "pet-pack: pet-synth's sample packs, with its truncated JPEG skipped" {
	command -v pet-synth >/dev/null || fail "pet-synth not built"
	pet-synth -q -o "$BATS_TEST_TMPDIR/s" --per-breed 12 --seed 2
	mkdir "$BATS_TEST_TMPDIR/x"
	tar -xzf "$BATS_TEST_TMPDIR/s/images.tar.gz" -C "$BATS_TEST_TMPDIR/x"
	tar -xzf "$BATS_TEST_TMPDIR/s/annotations.tar.gz" -C "$BATS_TEST_TMPDIR/x"
	pet-split "$BATS_TEST_TMPDIR/x" -q > "$BATS_TEST_TMPDIR/l.tsv"
	run --separate-stderr pet-pack -q -s 32 -o "$BATS_TEST_TMPDIR/s.npy" < "$BATS_TEST_TMPDIR/l.tsv"
	assert_success
	[[ $stderr == *"truncated or corrupt JPEG"* && $stderr == *"1 of "*" images skipped"* ]] || fail "$stderr"
	py '
f = open(sys.argv[1], "rb"); a, l, c = np.load(f), np.load(f), np.load(f)
n = sum(1 for r in open(sys.argv[2]) if not r.startswith("#"))
assert a.shape == (n - 1, 32, 32, 3) and l.shape == (n - 1,) and len(c) == 3
' "$BATS_TEST_TMPDIR/s.npy" "$BATS_TEST_TMPDIR/l.tsv"
}

@test "pet-pack: a FIFO named .jpg is skipped with a line, an error under --strict, never waited on" {
	mkfifo "$BATS_TEST_TMPDIR/fifo.jpg"
	run --separate-stderr timeout 20 pet-pack -q -s 16 -o "$BATS_TEST_TMPDIR/p.npy" "$DATA/images/samoyed_1.jpg" \
		"$BATS_TEST_TMPDIR/fifo.jpg"
	assert_success
	[[ $stderr == *"skipped $BATS_TEST_TMPDIR/fifo.jpg: not a regular file"* ]] || fail "$stderr"
	py 'assert np.load(open(sys.argv[1], "rb")).shape == (1, 16, 16, 3)' "$BATS_TEST_TMPDIR/p.npy"
	printf '# classes: a\n%s\t0\ta\n' "$BATS_TEST_TMPDIR/fifo.jpg" > "$BATS_TEST_TMPDIR/l.tsv"
	run --separate-stderr timeout 20 pet-pack -q -s 16 --strict -l "$BATS_TEST_TMPDIR/l.tsv" -o "$BATS_TEST_TMPDIR/q.npy"
	assert_failure 1
	[[ $stderr == "pet-pack: $BATS_TEST_TMPDIR/fifo.jpg: not a regular file"* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/q.npy" ]
}

@test "pet-pack: lists: a path starting with '#' is written './#...'; undeclared labels and twice-used names are errors" {
	cp "$DATA/images/samoyed_1.jpg" "$BATS_TEST_TMPDIR/#1.jpg"
	cd "$BATS_TEST_TMPDIR"
	printf '# classes: a b\n./#1.jpg\t1\tb\n' > ok.tsv
	run --separate-stderr pet-pack -q -s 8 -l ok.tsv -o ok.npy
	assert_success
	py 'f = open(sys.argv[1], "rb"); a, l, c = np.load(f), np.load(f), np.load(f); assert list(l) == [1] and list(c) == ["a", "b"]' ok.npy
	# unescaped it reads as a comment: an error, not a row lost
	printf '# classes: a b\n#1.jpg\t1\tb\n' > hash.tsv
	run --separate-stderr pet-pack -q -s 8 -l hash.tsv -o x.npy
	assert_failure 1
	[[ $stderr == "pet-pack: hash.tsv:2: "*"'./#...'"* ]] || fail "$stderr"
	printf '# classes: a b\n./#1.jpg\t2\tc\n' > above.tsv
	run --separate-stderr pet-pack -q -s 8 -l above.tsv -o x.npy
	assert_failure 1
	[[ $stderr == "pet-pack: above.tsv:2: label 2, but the classes line declares 2 classes"* ]] || fail "$stderr"
	printf '# classes: a b a\n./#1.jpg\t1\tb\n' > twice.tsv
	run --separate-stderr pet-pack -q -s 8 -l twice.tsv -o x.npy
	assert_failure 1
	[[ $stderr == "pet-pack: twice.tsv:1: class 'a' is label 0 and label 2"* ]] || fail "$stderr"
	[ ! -e x.npy ]
}
