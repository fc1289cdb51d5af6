#!/usr/bin/env bats
# tfevents-write: text lines to event files, checked with an independent Python framing
# reader (tests/tfrecord.py, its own CRC32C), protoc --decode_raw, PIL, and tfevents-cat.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# The one event file of a run folder.
evfile() {
	local f
	f=$(ls "$1"/events.out.tfevents.*)
	[ "$(echo "$f" | wc -l)" = 1 ] || fail "expected one event file in $1: $f"
	echo "$f"
}

# Decodes every record's payload with protoc into $2.txt (one block per record).
decode_all() {
	"$PY" "$TOP/tests/tfrecord.py" "$1" "$2" || fail "framing or CRC error in $1"
	: > "$2.txt"
	for p in "$2"/*.pb; do
		echo "== $p" >> "$2.txt"
		protoc --decode_raw < "$p" >> "$2.txt" || fail "protoc cannot decode $p"
	done
}

@test "tfevents-write: conventions (--help, --version, bad option)" {
	check_conventions tfevents-write
}

@test "tfevents-write: --logdir is required, stray arguments are usage errors" {
	run --separate-stderr tfevents-write < /dev/null
	assert_failure 2
	[[ $stderr == *"--logdir"* ]]
	run --separate-stderr tfevents-write --logdir runs extra < /dev/null
	assert_failure 2
	[ ! -e runs ]
}

@test "tfevents-write: scalars come back with their steps, values and sub-second wall times" {
	printf '# a comment\n\n1 Loss 0.5\n2 Loss 0.25\n2\tAccuracy\t0.75\n10 Loss scalar -1e-3\n' > in.txt
	run --separate-stderr tfevents-write --logdir runs --run train < in.txt
	assert_success
	assert_output ''
	f=$(evfile runs/train)
	[[ $(basename "$f") =~ ^events\.out\.tfevents\.[0-9]{10}\.[^/]+$ ]] || fail "name $f"
	run --separate-stderr tfevents-cat "$f"
	assert_success
	assert_line --index 0 --regexp $'^0\t[0-9]+\\.[0-9]+\tfile_version\t-\tbrain\\.Event:2$'
	[ "${#lines[@]}" = 5 ]
	echo "$output" | cut -f1,3- > got.txt
	printf '0\tfile_version\t-\tbrain.Event:2\n1\tscalar\tLoss\t0.5\n2\tscalar\tLoss\t0.25\n2\tscalar\tAccuracy\t0.75\n10\tscalar\tLoss\t-0.00100000005\n' > want.txt
	diff want.txt got.txt
	# Wall times: sub-second precision, never decreasing, close to now.
	echo "$output" | cut -f2 | py '
import time
t = [float(x) for x in sys.stdin]
assert all(b >= a for a, b in zip(t, t[1:])), t
assert any(x != int(x) for x in t), "whole seconds only: %r" % t
assert abs(t[0] - time.time()) < 60, t'
}

@test "tfevents-write: protoc --decode_raw decodes every record and shows the fields" {
	"$PY" -c "from PIL import Image; Image.new('RGB', (7, 5), (10, 20, 30)).save('p.png')"
	printf '1 Loss 0.5\n2 w hist 1 2 2 3\n3 img image p.png\n4 notes text hello\ngraph default 64 3\n' |
		tfevents-write --logdir runs
	decode_all "$(evfile runs)" pl
	run cat pl.txt
	# Record 0: file_version (Event field 3), wall_time as a double (fixed64 field 1).
	assert_output --regexp $'== pl/000.pb\n1: 0x[0-9a-f]{16}\n3: "brain.Event:2"'
	# Scalar: Event.step 2 = 1, summary 5 > value 1 > tag 1 "Loss", simple_value 2 = 0.5f.
	assert_output --regexp $'2: 1\n5 \\{\n  1 \\{\n    1: "Loss"\n    2: 0x3f000000'
	# Histogram: HistogramProto (value field 5) min 1 = 1.0, max 2 = 3.0, num 3 = 4.0.
	assert_output --regexp $'1: "w"\n    5 \\{\n      1: 0x3ff0000000000000\n      2: 0x4008000000000000\n      3: 0x4010000000000000'
	# Image: value field 4, height 1 = 5, width 2 = 7, colorspace 3 = 3, PNG bytes in 4.
	assert_output --regexp $'1: "img"\n    4 \\{\n      1: 5\n      2: 7\n      3: 3\n      4: "\\\\211PNG'
	# Text: plugin_name "text" in metadata 9, a DT_STRING (7) tensor 8 with string_val 8.
	assert_output --regexp $'9 \\{\n      1 \\{\n        1: "text"\n      \\}\n    \\}\n    8 \\{\n      1: 7'
	assert_output --partial '8: "hello"'
	# Graph (Event field 4): node names with scopes, ops, inputs, _output_shapes.
	assert_output --partial '1: "conv1_1/weights1_1"'
	assert_output --partial '2: "Conv2D"'
	assert_output --partial '3: "conv1_2/Relu"'
	assert_output --partial '1: "_output_shapes"'
}

@test "tfevents-write: the same lines from a file or a pipe give the same records" {
	printf '1 Loss 0.5\n2 h hist 0.1 -0.2 3e5\n3 t text a  b\ngraph default\n' > in.txt
	tfevents-write --logdir runs --run file < in.txt
	cat in.txt | tfevents-write --logdir runs --run pipe
	tfevents-cat "$(evfile runs/file)" | cut -f1,3- > a.txt
	tfevents-cat "$(evfile runs/pipe)" | cut -f1,3- > b.txt
	diff a.txt b.txt
	[ "$(wc -l < a.txt)" = 5 ]
}

@test "tfevents-write: histogram buckets add up to num; NaN and Inf are left out and reported" {
	py 'print("7 weights hist " + " ".join(str(x) for x in np.random.default_rng(1).normal(0, 0.1, 500)) + " nan inf -inf")' > in.txt
	run --separate-stderr tfevents-write --logdir runs < in.txt
	assert_success
	[[ $stderr == *"line 1: weights: left out of the histogram: 1 NaN, 1 +Inf, 1 -Inf"* ]] || fail "$stderr"
	tfevents-cat "$(evfile runs)" | grep $'\thistogram\t' > h.txt
	py '
line = open("h.txt").read().split("\t")[4].split()
kv = dict(x.split("=") for x in line if "=" in x)
counts = [float(x.split(":")[1]) for x in line if ":" in x]
limits = [float(x.split(":")[0]) for x in line if ":" in x]
assert float(kv["num"]) == 500, kv
assert sum(counts) == 500, sum(counts)
vals = np.random.default_rng(1).normal(0, 0.1, 500)
assert abs(float(kv["min"]) - vals.min()) < 1e-9 and abs(float(kv["max"]) - vals.max()) < 1e-9, kv
assert abs(float(kv["sum"]) - vals.sum()) < 1e-6, kv
# TensorFlow default limits grow by 10%: neighbouring non-empty limits differ by a power of 1.1.
assert all(b > a for a, b in zip(limits, limits[1:]))
assert len(counts) > 20, "too few buckets: %d" % len(counts)'
	# -q silences the warning, not the histogram.
	run --separate-stderr tfevents-write -q --logdir runs2 < in.txt
	assert_success
	[ -z "$stderr" ]
}

@test "tfevents-write: a PNG image is stored whole and decodes at the right size" {
	"$PY" -c "
from PIL import Image
im = Image.new('RGB', (37, 21))
im.putpixel((3, 4), (255, 0, 0))
im.save('rgb.png')
Image.new('L', (9, 11), 128).save('gray.png')"
	printf '50 features image rgb.png\n51 gray image gray.png\n' | tfevents-write --logdir runs
	f=$(evfile runs)
	run tfevents-cat "$f"
	assert_success
	assert_line --index 1 --regexp $'^50\t.*\timage\tfeatures\t37x21 colorspace=3 png [0-9]+ bytes$'
	assert_line --index 2 --regexp $'^51\t.*\timage\tgray\t9x11 colorspace=1 png [0-9]+ bytes$'
	"$PY" "$TOP/tests/tfrecord.py" "$f" pl
	py '
import io
from PIL import Image
for rec, size, ref in (("pl/001.pb", (37, 21), "rgb.png"), ("pl/002.pb", (9, 11), "gray.png")):
    data = open(rec, "rb").read()
    png = data[data.index(b"\x89PNG"):]
    png = png[:png.index(b"IEND") + 8]
    assert png == open(ref, "rb").read(), "PNG not stored byte for byte"
    im = Image.open(io.BytesIO(png))
    assert im.size == size, im.size
assert Image.open(io.BytesIO(png)).mode == "L"'
}

@test "tfevents-write: graph default has the network's scopes, ops and shapes" {
	echo 'graph default' | tfevents-write --logdir runs
	run tfevents-cat "$(evfile runs)"
	assert_success
	assert_line --index 1 --regexp $'^0\t.*\tgraph\t-\t[0-9]+ nodes: '
	for n in conv1_1/weights1_1 conv1_1/biases1_1 conv1_1/Conv2D conv1_1/Relu conv1_2/weights1_2 \
		pool1/MaxPool conv2_1/weights2_1 conv2_2/Relu pool2/MaxPool fc1/weights3_1 \
		softmax/weights3_2 loss/Mean; do
		[[ ${lines[1]} == *" $n"* ]] || fail "no node $n"
	done
	decode_all "$(evfile runs)" pl
	# fc1/weights3_1 is (224/4 * 224/4 * 64) x 512 = 200704 x 512.
	grep -A30 '"fc1/weights3_1"' pl.txt | tr -d ' \n' | grep -q '2{1:200704}2{1:512}' ||
		fail "fc1/weights3_1 shape not 200704x512"
}

@test "tfevents-write: text keeps the rest of the line, with \\n as a newline" {
	printf '3 notes text hello   *world*\\nline two\n' | tfevents-write --logdir runs
	run tfevents-cat "$(evfile runs)"
	assert_line --index 1 $'3\t'"$(tfevents-cat "$(evfile runs)" | sed -n 2p | cut -f2)"$'\ttext\tnotes\thello   *world*\\nline two'
}

@test "tfevents-write: a live pipe shows records before stdin closes" {
	mkfifo in.fifo
	# fd 3 belongs to bats: the writer must not hold it, we use fd 7 for the fifo.
	tfevents-write --logdir runs < in.fifo 3>&- &
	pid=$!
	exec 7> in.fifo
	echo '1 Loss 0.5' >&7
	found=0
	for _ in $(seq 30); do
		f=$(ls runs/events.out.tfevents.* 2>/dev/null || true)
		if [ -n "$f" ] && tfevents-cat "$f" 2>/dev/null | grep -q $'\tscalar\tLoss\t0.5$'; then
			found=1
			break
		fi
		sleep 0.1
	done
	echo '2 Loss 0.25' >&7
	exec 7>&-
	wait "$pid"
	[ "$found" = 1 ] || fail "record not on disk within 3 s while stdin was open"
	run tfevents-cat "$f"
	assert_line --index 2 --partial $'\tscalar\tLoss\t0.25'
}

@test "tfevents-write: a bad line stops with its number; everything before stays valid" {
	printf '1 Loss 0.5\n2 Loss 0.25\n3 Loss abc\n4 Loss 1\n' > in.txt
	run --separate-stderr tfevents-write --logdir runs < in.txt
	assert_failure 1
	assert_output ''
	[[ $stderr == "tfevents-write: line 3: 'abc' is not a number"* ]] || fail "$stderr"
	run --separate-stderr tfevents-cat "$(evfile runs)"
	assert_success
	[ "${#lines[@]}" = 3 ]
	assert_line --index 2 --partial $'\tLoss\t0.25'
	"$PY" "$TOP/tests/tfrecord.py" "$(evfile runs)" pl
}

@test "tfevents-write: each kind of bad line is named" {
	for bad in 'x Loss 1' '-1 Loss 1' '1 Loss' '1 Loss 1 2' '1 h hist' '1 h hist 1 x' \
		'1 i image' '1 i image missing.png' '1 i image in.txt' 'graph other' 'graph default 2' \
		'1 Loss 1e999' '1 s scalar'; do
		echo "$bad" > in.txt
		run --separate-stderr tfevents-write --logdir "runs" --run r < in.txt
		assert_failure 1
		[[ $stderr == "tfevents-write: line 1: "* ]] || fail "'$bad': $stderr"
	done
	echo '1 i image missing.png' > in.txt
	run --separate-stderr tfevents-write --logdir runs < in.txt
	[[ $stderr == *"missing.png: No such file"* ]] || fail "$stderr"
	echo 'not a png' > fake.png
	echo '1 i image fake.png' > in.txt
	run --separate-stderr tfevents-write --logdir runs < in.txt
	[[ $stderr == *"fake.png: not a PNG"* ]] || fail "$stderr"
}

@test "tfevents-write: --keep-going reports and skips bad lines, then exits 1" {
	printf '1 Loss 0.5\n2 Loss ?\n3 Loss 0.125\n' > in.txt
	run --separate-stderr tfevents-write --keep-going --logdir runs < in.txt
	assert_failure 1
	[[ $stderr == *"line 2: "*"(skipped)"* ]] || fail "$stderr"
	run tfevents-cat "$(evfile runs)"
	assert_success
	assert_line --index 2 --partial $'3\t'
	assert_line --index 2 --partial $'\tLoss\t0.125'
}

@test "tfevents-write: an unusable log folder is an error naming it" {
	touch plain
	run --separate-stderr tfevents-write --logdir plain --run x < /dev/null
	assert_failure 1
	[[ $stderr == "tfevents-write: plain"* ]] || fail "$stderr"
}

@test "tfevents-write: two writers in the same second never share a file" {
	echo '1 a 1' | tfevents-write --logdir runs
	echo '1 a 2' | tfevents-write --logdir runs
	[ "$(ls runs | wc -l)" = 2 ]
	run tfevents-cat runs
	assert_success
	[ "${#lines[@]}" = 4 ]
}
