#!/usr/bin/env bats
# tfevents-cat: event files written by an independent Python encoder (its own protobuf
# varints and CRC32C) read back as text; damaged files: truncation, bad CRCs, garbage.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	# An independent writer: protobuf and TFRecord framing by hand, in Python.
	cat > mkev.py <<'EOF'
import struct, sys
def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF
def masked(d):
    c = crc32c(d)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80]); v >>= 7
    return out + bytes([v])
def key(f, w): return varint(f << 3 | w)
def vint(f, v): return key(f, 0) + varint(v)
def dbl(f, v): return key(f, 1) + struct.pack("<d", v)
def flt(f, v): return key(f, 5) + struct.pack("<f", v)
def ld(f, b): return key(f, 2) + varint(len(b)) + b
def record(payload):
    n = struct.pack("<Q", len(payload))
    return n + struct.pack("<I", masked(n)) + payload + struct.pack("<I", masked(payload))
def scalar(step, tag, v, t):
    return dbl(1, t) + vint(2, step) + ld(5, ld(1, ld(1, tag.encode()) + flt(2, v)))
recs = [dbl(1, 1700000000.25) + ld(3, b"brain.Event:2")]
recs.append(scalar(1, "Loss", 0.5, 1700000001.125))
# Step after the summary, and a TF2-style scalar: a float tensor with plugin metadata.
tensor = vint(1, 1) + ld(2, b"") + ld(5, struct.pack("<f", 0.75))
meta = ld(1, ld(1, b"scalars"))
recs.append(dbl(1, 1700000002.5) + ld(5, ld(1, ld(1, b"Accuracy") + ld(9, meta) + ld(8, tensor))) + vint(2, 2))
# A histogram of [1, 2, 2, 3] in three buckets.
h = dbl(1, 1) + dbl(2, 3) + dbl(3, 4) + dbl(4, 8) + dbl(5, 18)
h += ld(6, struct.pack("<3d", 1.5, 2.5, 3.5)) + ld(7, struct.pack("<3d", 1, 2, 1))
recs.append(dbl(1, 1700000003.0) + vint(2, 3) + ld(5, ld(1, ld(1, b"w") + ld(5, h))))
# A text summary with a tab inside, and two values in one Summary.
txt = ld(1, ld(1, b"notes") + ld(8, vint(1, 7) + ld(8, b"a\tb")))
recs.append(dbl(1, 1700000004.0) + vint(2, 4) + ld(5, txt + ld(1, ld(1, b"lr") + flt(2, 0.001))))
# A graph of two nodes.
g = ld(1, ld(1, b"scope/a") + ld(2, b"Const")) + ld(1, ld(1, b"scope/b") + ld(2, b"Identity") + ld(3, b"scope/a"))
recs.append(dbl(1, 1700000005.0) + ld(4, g))
sys.stdout.buffer.write(b"".join(record(r) for r in recs))
EOF
	"$PY" mkev.py > ev.tfevents
	cat > want.txt <<'EOF'
0	1700000000.25	file_version	-	brain.Event:2
1	1700000001.125	scalar	Loss	0.5
2	1700000002.5	scalar	Accuracy	0.75
3	1700000003	histogram	w	num=4 min=1 max=3 sum=8 sum_squares=18 buckets=3 1.5:1 2.5:2 3.5:1
4	1700000004	text	notes	a\tb
4	1700000004	scalar	lr	0.00100000005
0	1700000005	graph	-	2 nodes: scope/a scope/b
EOF
}

@test "tfevents-cat: conventions (--help, --version, bad option)" {
	check_conventions tfevents-cat
}

@test "tfevents-cat: reads an independently encoded file exactly" {
	run --separate-stderr tfevents-cat ev.tfevents
	assert_success
	[ -z "$stderr" ]
	diff want.txt <(echo "$output")
}

@test "tfevents-cat: standard input and a file give the same result" {
	tfevents-cat ev.tfevents > a.txt
	tfevents-cat < ev.tfevents > b.txt
	tfevents-cat - < ev.tfevents > c.txt
	diff a.txt b.txt
	diff a.txt c.txt
	cat ev.tfevents | tfevents-cat > d.txt
	diff a.txt d.txt
}

@test "tfevents-cat: a truncated final record is reported after every record before it" {
	size=$(stat -c %s ev.tfevents)
	for cut in 1 4 20; do
		head -c $((size - cut)) ev.tfevents > cut.tfevents
		run --separate-stderr tfevents-cat cut.tfevents
		assert_failure 1
		diff <(head -n 6 want.txt) <(echo "$output")
		[[ $stderr == "tfevents-cat: cut.tfevents: truncated record at offset "* ]] || fail "$stderr"
	done
	# From a pipe too (no file size to check against).
	run --separate-stderr bash -c 'cat cut.tfevents | tfevents-cat'
	assert_failure 1
	[[ $stderr == *"<stdin>: truncated record"* ]] || fail "$stderr"
	[ "${#lines[@]}" = 6 ]
}

@test "tfevents-cat: a bad data CRC names the file and offset, and the rest is still read" {
	cp ev.tfevents bad.tfevents
	# Record 1 starts after record 0 (16 + 24 bytes); flip a byte inside its payload.
	printf 'X' | dd of=bad.tfevents bs=1 seek=$((40 + 14)) conv=notrunc 2>/dev/null
	run --separate-stderr tfevents-cat bad.tfevents
	assert_failure 1
	[ "$stderr" = "tfevents-cat: bad.tfevents: bad data CRC in record at offset 40" ]
	diff <(sed 2d want.txt) <(echo "$output")
}

@test "tfevents-cat: a bad length CRC stops the file with the offset" {
	cp ev.tfevents bad.tfevents
	printf '\377' | dd of=bad.tfevents bs=1 seek=41 conv=notrunc 2>/dev/null
	run --separate-stderr tfevents-cat bad.tfevents
	assert_failure 1
	[ "$stderr" = "tfevents-cat: bad.tfevents: bad length CRC in record at offset 40" ]
	[ "$output" = "$(head -n 1 want.txt)" ]
}

@test "tfevents-cat: a directory means its event files in path order, each line named" {
	mkdir -p runs/train runs/test
	cp ev.tfevents runs/train/events.out.tfevents.2.host
	printf '1 Loss 0.9\n' | tfevents-write --logdir runs --run test
	cp ev.tfevents runs/train/events.out.tfevents.1.host
	touch runs/train/notes.txt
	run --separate-stderr tfevents-cat runs
	assert_success
	[ "${#lines[@]}" = 16 ]
	[[ ${lines[0]} == runs/test/events.out.tfevents.*$'\t0\t'* ]] || fail "${lines[0]}"
	[[ ${lines[2]} == runs/train/events.out.tfevents.1.host$'\t0\t1700000000.25\t'* ]] || fail "${lines[2]}"
	[[ ${lines[9]} == runs/train/events.out.tfevents.2.host$'\t'* ]] || fail "${lines[9]}"
	run tfevents-cat --no-filename runs/train
	diff <(cat want.txt want.txt) <(echo "$output")
	run tfevents-cat -H ev.tfevents
	assert_line --index 0 $'ev.tfevents\t0\t1700000000.25\tfile_version\t-\tbrain.Event:2'
}

@test "tfevents-cat: missing files, empty files and folders, and garbage are errors, the rest still read" {
	mkdir empty
	run --separate-stderr tfevents-cat missing.tfevents ev.tfevents
	assert_failure 1
	[[ $stderr == "tfevents-cat: missing.tfevents: No such file"* ]] || fail "$stderr"
	[ "${#lines[@]}" = 7 ]
	run --separate-stderr tfevents-cat empty
	assert_failure 1
	[[ $stderr == "tfevents-cat: empty: no event files"* ]] || fail "$stderr"
	head -c 100 /dev/urandom > junk
	run --separate-stderr tfevents-cat junk
	assert_failure 1
	assert_output ''
	[[ $stderr == "tfevents-cat: junk: "*"offset 0"* ]] || fail "$stderr"
	# Nothing read is not silence: an empty file or stream is named on stderr, exit 1.
	: > zero
	run --separate-stderr tfevents-cat zero
	assert_failure 1
	assert_output ''
	[ "$stderr" = "tfevents-cat: zero: empty: no event records in it" ] || fail "$stderr"
	run --separate-stderr tfevents-cat < /dev/null
	assert_failure 1
	assert_output ''
	[ "$stderr" = "tfevents-cat: <stdin>: empty: no event records in it" ] || fail "$stderr"
}

@test "tfevents-cat: a record whose payload is not an Event is reported, not a crash" {
	"$PY" - > bad.tfevents <<'EOF'
import struct, sys
sys.path.insert(0, ".")
exec(open("mkev.py").read().split("recs = ")[0])
sys.stdout.buffer.write(record(b"\x0a\x05ab") + record(dbl(1, 5.0) + vint(2, 9) + ld(5, ld(1, ld(1, b"x") + flt(2, 1.0)))))
EOF
	run --separate-stderr tfevents-cat bad.tfevents
	assert_failure 1
	[[ $stderr == "tfevents-cat: bad.tfevents: record at offset 0: malformed Event"* ]] || fail "$stderr"
	assert_output $'9\t5\tscalar\tx\t1'
}
