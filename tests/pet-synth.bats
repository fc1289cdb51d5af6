#!/usr/bin/env bats
# pet-synth: layout, determinism and every quirk of the synthetic Oxford-IIIT Pet mirror.

load helper

# The real 37 class names in class-id order (torchvision / tfds loaders agree on them).
REAL_BREEDS="Abyssinian american_bulldog american_pit_bull_terrier basset_hound beagle Bengal
Birman Bombay boxer British_Shorthair chihuahua Egyptian_Mau english_cocker_spaniel
english_setter german_shorthaired great_pyrenees havanese japanese_chin keeshond leonberger
Maine_Coon miniature_pinscher newfoundland Persian pomeranian pug Ragdoll Russian_Blue
saint_bernard samoyed scottish_terrier shiba_inu Siamese Sphynx staffordshire_bull_terrier
wheaten_terrier yorkshire_terrier"

# One default set for the read-only tests, made once.
setup_file() {
	export SET="$BATS_FILE_TMPDIR/set"
	"${PETCNN_BIN:-$BATS_TEST_DIRNAME/../bin}/pet-synth" -q -o "$SET"
	mkdir -p "$SET/x"
	tar -xzf "$SET/images.tar.gz" -C "$SET/x"
	tar -xzf "$SET/annotations.tar.gz" -C "$SET/x"
}

# quirk KIND: the paths the README's QUIRKS table gives for KIND.
quirk() {
	awk -F '\t' -v k="$1" '/^QUIRKS$/ { q = 1 } q && $1 == k { print $2 }' "$SET/x/annotations/README" | tr ' ' '\n'
}

@test "pet-synth: conventions" {
	check_conventions pet-synth
	run --separate-stderr pet-synth --help
	assert_output --partial "--breeds"
	assert_output --partial "truncated"
}

@test "pet-synth: --list-breeds gives the real 37 names in class-id order" {
	run --separate-stderr pet-synth --list-breeds
	assert_success
	[ "$(echo $output)" = "$(echo $REAL_BREEDS)" ]
}

@test "pet-synth: default set has both archives and a SHA256SUMS that checks" {
	[ -s "$SET/images.tar.gz" ] && [ -s "$SET/annotations.tar.gz" ]
	run bash -c "cd '$SET' && sha256sum -c SHA256SUMS"
	assert_success
	assert_line "images.tar.gz: OK"
	assert_line "annotations.tar.gz: OK"
	# gzip, and no leftover temporary files
	[ "$(head -c 2 "$SET/images.tar.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ]
	[ -z "$(ls -A "$SET" | grep -v -x -e images.tar.gz -e annotations.tar.gz -e SHA256SUMS -e x)" ]
}

@test "pet-synth: images archive holds 40 <Breed>_<n>.jpg per default breed" {
	run tar -tzf "$SET/images.tar.gz"
	assert_success
	for b in samoyed shiba_inu Abyssinian; do
		n=$(printf '%s\n' "$output" | grep -c -E "^images/${b}_[0-9]+\.jpg$")
		[ "$n" -eq 40 ] || fail "$b: $n images"
		for i in 1 17 40; do assert_line "images/${b}_$i.jpg"; done
	done
	# Nothing outside images/, and no other breed.
	[ "$(printf '%s\n' "$output" | grep -c -v -E '^images/(\._)?(samoyed|shiba_inu|Abyssinian)_[0-9]+\.(jpg|mat)$|^images/$')" -eq 0 ]
}

@test "pet-synth: list.txt has the real header and real class, species and breed ids" {
	list="$SET/x/annotations/list.txt"
	run head -6 "$list"
	assert_output "#Image CLASS-ID SPECIES BREED ID
#ID: 1:37 Class ids
#SPECIES: 1:Cat 2:Dog
#BREED ID: 1-25:Cat 1:12:Dog
#All images with 1st letter as captial are cat images
#images with small first letter are dog images"
	run awk '!/^#/ { split($1, p, "_[0-9]+$"); print p[1], $2, $3, $4 }' "$list"
	[ "$(printf '%s\n' "$output" | sort -u | tr '\n' ';')" = "Abyssinian 1 1 1;samoyed 30 2 20;shiba_inu 32 2 22;" ]
	# 39 listed per breed (the 40th is unlisted), four columns everywhere.
	[ "$(grep -v '^#' "$list" | wc -l)" -eq 117 ]
	[ "$(grep -v '^#' "$list" | awk 'NF != 4' | wc -l)" -eq 0 ]
	# Rows in the real files' order: collated ignoring case and punctuation, so that
	# Abyssinian_10 comes before Abyssinian_1 (and Abyssinian_100 first in the real set).
	run py '
import re
for f in sys.argv[1:]:
    rows = [l for l in open(f).read().splitlines() if not l.startswith("#")]
    key = lambda l: (re.sub("[^0-9a-z]", "", l.lower()), l)
    print(rows == sorted(rows, key=key), rows[0])' "$list" "${list%/*}/trainval.txt"
	assert_line --index 0 "True Abyssinian_10 1 1 1"
	assert_line --index 1 --regexp "^True Abyssinian_"
}

@test "pet-synth: trainval and test split list.txt about half and half per class" {
	a=$SET/x/annotations
	run grep -c '#' "$a/trainval.txt" "$a/test.txt"
	assert_output --partial "trainval.txt:0"
	assert_output --partial "test.txt:0"
	# Together exactly the listed rows, no row in both.
	diff <(grep -v '^#' "$a/list.txt" | sort) <(cat "$a/trainval.txt" "$a/test.txt" | sort)
	[ -z "$(sort "$a/trainval.txt" "$a/test.txt" | uniq -d)" ]
	for id in 1 30 32; do
		tv=$(awk -v i=$id '$2 == i' "$a/trainval.txt" | wc -l)
		te=$(awk -v i=$id '$2 == i' "$a/test.txt" | wc -l)
		[ "$tv" -eq 20 ] && [ "$te" -eq 19 ] || fail "class $id: trainval $tv test $te"
	done
}

@test "pet-synth: annotations hold README, trimaps for every image and xmls for trainval" {
	a=$SET/x/annotations
	[ -s "$a/README" ]
	[ "$(ls "$a/trimaps" | grep -c -v '^\._')" -eq 120 ]
	[ "$(ls "$a/xmls" | wc -l)" -eq "$(wc -l < "$a/trainval.txt")" ]
	run py '
from PIL import Image
im = Image.open(sys.argv[1] + "/trimaps/samoyed_1.png")
print(im.mode, sorted(set(np.asarray(im).ravel().tolist())))
' "$a"
	assert_output "L [1, 2, 3]"
}

@test "pet-synth: PIL sees the PNG and the GIF under .jpg names, grayscale and CMYK" {
	cd "$SET/x"
	for spec in "png-as-jpg:PNG RGB" "gif-as-jpg:GIF P" "grayscale:JPEG L" "cmyk:JPEG CMYK"; do
		kind=${spec%%:*}
		files=$(quirk "$kind")
		[ -n "$files" ] || fail "no $kind in the README's QUIRKS"
		for f in $files; do
			[[ $f == images/*.jpg ]] || fail "$kind: $f is not a .jpg"
			run py '
from PIL import Image
im = Image.open(sys.argv[1]); im.load(); print(im.format, im.mode)' "$f"
			assert_success
			assert_output "${spec#*:}"
		done
	done
	# Three grayscale images, one per breed; the CMYK one turns back into a sensible RGB.
	[ "$(quirk grayscale | wc -l)" -eq 3 ]
	run py '
from PIL import Image
a = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=float)
print("ok" if 20 < a.mean() < 235 and a.std() > 10 else "flat %f %f" % (a.mean(), a.std()))' "$(quirk cmyk)"
	assert_output ok
}

@test "pet-synth: the truncated JPEG fails to load fully, the extraneous-bytes one decodes" {
	cd "$SET/x"
	t=$(quirk truncated)
	e=$(quirk extraneous-bytes)
	[ -n "$t" ] && [ -n "$e" ]
	run py '
from PIL import Image
im = Image.open(sys.argv[1])
try:
    im.load(); print("loaded")
except OSError as e:
    print("error:", e)' "$t"
	assert_output --partial "truncated"
	run py '
from PIL import Image
im = Image.open(sys.argv[1]); im.load(); print(im.format, im.mode, im.size[0] > 0)' "$e"
	assert_output "JPEG RGB True"
	# The junk sits between JPEG segments: bytes after APP0 that are not a marker.
	run py '
b = open(sys.argv[1], "rb").read()
at = 4 + (b[4] << 8 | b[5])
print(b[at] != 0xFF)' "$e"
	assert_output True
}

@test "pet-synth: unlisted images, the .mat file and AppleDouble files exist" {
	cd "$SET/x"
	for f in $(quirk unlisted); do
		[ -s "$f" ] || fail "$f missing"
		n=$(basename "$f" .jpg)
		! grep -q -w "^$n" annotations/list.txt annotations/trainval.txt annotations/test.txt ||
			fail "$n is listed"
	done
	[ "$(quirk unlisted | wc -l)" -eq 3 ]
	[ "$(quirk mat)" = images/Abyssinian_100.mat ]
	head -c 19 images/Abyssinian_100.mat | grep -q '^MATLAB 5.0 MAT-file'
	for f in $(quirk appledouble); do
		[[ $(basename "$f") == ._* ]] || fail "$f"
		[ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 00051607 ] || fail "$f: no AppleDouble magic"
	done
	[ -n "$(quirk appledouble | grep '^annotations/')" ] && [ -n "$(quirk appledouble | grep '^images/')" ]
}

@test "pet-synth: varied image sizes within --min-size..--max-size" {
	cd "$SET/x"
	run py '
import glob
from PIL import Image
s = [Image.open(f).size for f in glob.glob("images/[!.]*.jpg")]
w = [a for a, b in s]; h = [b for a, b in s]
print(min(w) >= 120 and min(h) >= 120 and max(w) <= 320 and max(h) <= 320, len(set(s)) > 50)'
	assert_output "True True"
}

@test "pet-synth: same seed gives the same bytes, another seed different ones" {
	d=$BATS_TEST_TMPDIR
	opts="-q --per-breed 10 --min-size 40 --max-size 60 --breeds pug,Bombay"
	pet-synth $opts --seed 3 -o "$d/a"
	pet-synth $opts --seed 3 -o "$d/b"
	pet-synth $opts --seed 4 -o "$d/c"
	for f in images.tar.gz annotations.tar.gz SHA256SUMS; do
		cmp "$d/a/$f" "$d/b/$f"
		! cmp -s "$d/a/$f" "$d/c/$f" || fail "$f same for seeds 3 and 4"
	done
	# Rerunning over an existing set replaces it with the same bytes.
	pet-synth $opts --seed 3 -o "$d/a"
	cmp "$d/a/images.tar.gz" "$d/b/images.tar.gz"
}

@test "pet-synth: --breeds is case-insensitive and picks the quirk breeds in order" {
	d=$BATS_TEST_TMPDIR/s
	run --separate-stderr pet-synth -q --per-breed 10 --min-size 40 --max-size 48 --breeds BOMBAY,Pug -o "$d"
	assert_success
	run tar -tzf "$d/images.tar.gz"
	assert_line images/Bombay_10.jpg
	assert_line images/pug_10.jpg
	assert_line images/Bombay_100.mat
	[ "$(printf '%s\n' "$output" | grep -c -E '^images/(Bombay|pug)_[0-9]+\.jpg$')" -eq 20 ]
	run bash -c "tar -xzf '$d/annotations.tar.gz' -O annotations/README | awk -F '\t' '\$1 == \"png-as-jpg\" || \$1 == \"cmyk\" { print \$2 }'"
	assert_output "images/Bombay_3.jpg
images/pug_7.jpg"
}

@test "pet-synth: --format tar writes plain tar under the .tar.gz names" {
	d=$BATS_TEST_TMPDIR/t
	pet-synth -q --format tar --per-breed 10 --min-size 40 --max-size 48 -o "$d"
	[ "$(head -c 2 "$d/images.tar.gz" | od -An -tx1 | tr -d ' ')" != 1f8b ]
	run py '
import tarfile
for f in sys.argv[1:]:
    with tarfile.open(f, "r:") as t:
        print(len(t.getnames()) > 10)' "$d/images.tar.gz" "$d/annotations.tar.gz"
	assert_output "True
True"
	run tar -tf "$d/annotations.tar.gz" annotations/list.txt
	assert_success
	run bash -c "cd '$d' && sha256sum -c SHA256SUMS"
	assert_success
}

@test "pet-synth: an unknown breed is a usage error naming it, nothing written" {
	d=$BATS_TEST_TMPDIR/u
	run --separate-stderr pet-synth -o "$d" --breeds samoyed,unicorn
	assert_failure 2
	assert_output ''
	[[ $stderr == *"pet-synth: "*"unicorn"* ]] || fail "$stderr"
	[ ! -e "$d" ]
	run --separate-stderr pet-synth -o "$d" --breeds samoyed,SAMOYED
	assert_failure 2
	[[ $stderr == *"twice"* ]] || fail "$stderr"
}

@test "pet-synth: bad option values are usage errors" {
	d=$BATS_TEST_TMPDIR/v
	for args in "--per-breed 5" "--per-breed x" "--min-size 300 --max-size 200" "--min-size 8" \
		"--format zip" "--seed -1" "--breeds ," "extra-arg"; do
		run --separate-stderr pet-synth -o "$d" $args
		assert_failure 2
		[[ $stderr == "pet-synth: "* ]] || fail "$args: $stderr"
	done
	run --separate-stderr pet-synth
	assert_failure 2
	[[ $stderr == *"-o DIR"* ]] || fail "$stderr"
	[ ! -e "$d" ]
}

@test "pet-synth: an unwritable output is exit 1 naming it, an old set is kept" {
	f=$BATS_TEST_TMPDIR/file
	echo hello > "$f"
	# A parent that is a file stops even root (missing parents would be created).
	run --separate-stderr pet-synth -q -o "$f/dir/x"
	assert_failure 1
	[[ $stderr == "pet-synth: $f"* ]] || fail "$stderr"
	[ "$(cat "$f")" = hello ]
	run --separate-stderr pet-synth -q --per-breed 10 --min-size 40 --max-size 48 -o "$BATS_TEST_TMPDIR/a/b/c"
	assert_success
	[ -s "$BATS_TEST_TMPDIR/a/b/c/SHA256SUMS" ]
	run --separate-stderr pet-synth -q -o "$f"
	assert_failure 1
	[[ $stderr == *"$f"* ]] || fail "$stderr"
	[ "$(cat "$f")" = hello ]
	if [ "$(id -u)" != 0 ]; then
		d=$BATS_TEST_TMPDIR/ro
		pet-synth -q --per-breed 10 --min-size 40 --max-size 48 -o "$d"
		sum=$(cat "$d/SHA256SUMS")
		chmod a-w "$d"
		run --separate-stderr pet-synth -q --seed 9 --per-breed 10 --min-size 40 --max-size 48 -o "$d"
		chmod u+w "$d"
		assert_failure 1
		[ "$(cat "$d/SHA256SUMS")" = "$sum" ]
	fi
}

@test "pet-synth: a write that fails midway leaves no file behind" {
	d=$BATS_TEST_TMPDIR/full
	mkdir "$d"
	# A 200 KiB file size limit, with SIGXFSZ ignored so write(2) fails with EFBIG.
	run --separate-stderr bash -c "trap '' XFSZ; ulimit -f 200; exec pet-synth -q -o '$d'"
	assert_failure 1
	[[ $stderr == "pet-synth: $d/images.tar.gz: "* ]] || fail "$stderr"
	[ -z "$(ls -A "$d")" ] || fail "left behind: $(ls -A "$d")"
}
