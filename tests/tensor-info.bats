#!/usr/bin/env bats
# tensor-info against numpy: numpy writes every dtype and rank, streams and .npz files;
# tensor-info must report numpy's dtype, shape, min, max and mean, on files and pipes,
# and refuse every malformed input with one clear line naming the file.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# Compares tensor-info --json output (file $1) with the arrays numpy loads from the
# given files (npy streams or npz). min/max must match exactly (f4 printed with 9
# significant digits and f8 with 17 round-trip), mean within 1e-6 relative.
compare_json() {
	py '
import json
got = [json.loads(l) for l in open(sys.argv[1])]
want = []
for path in sys.argv[2:]:
    if open(path, "rb").read(2) == b"PK":
        with np.load(path) as z:
            want += [(k, z[k]) for k in z.files]
    else:
        f = open(path, "rb")
        i = 0
        while f.peek(1):
            want.append((str(i), np.load(f)))
            i += 1
assert len(got) == len(want), (len(got), len(want))
for g, (name, a) in zip(got, want):
    assert g["name"] == name, (g["name"], name)
    kind = a.dtype.kind
    dt = "U%d" % (a.dtype.itemsize // 4) if kind == "U" else a.dtype.str[1:]
    assert g["dtype"] == dt, (name, g["dtype"], dt)
    assert g["shape"] == list(a.shape), (name, g["shape"], a.shape)
    if kind == "U":
        assert g["strings"] == [str(s) for s in a.reshape(-1)[:5]], (name, g["strings"])
        continue
    if a.size == 0:
        assert g["min"] is None and g["max"] is None and g["mean"] is None, g
        continue
    # Parsed back into the dtype of the array, the printed digits must give it exactly.
    lo, hi = (np.array(g[k]).astype(a.dtype) for k in ("min", "max"))
    assert lo == a.min() and hi == a.max(), (name, g["min"], a.min(), g["max"], a.max())
    mean = a.astype(np.float64).mean()
    assert abs(g["mean"] - mean) <= 1e-6 * max(1, abs(mean)), (name, g["mean"], mean)
print("checked", len(got))
' "$@"
}

@test "tensor-info: --help, --version, bad option" {
	check_conventions tensor-info
}

@test "tensor-info: every dtype, 0-d to 5-d, in a numpy-written stream" {
	py '
rng = np.random.default_rng(1)
shapes = [(), (0,), (3,), (2, 3), (2, 1, 3), (1, 2, 2, 2), (2, 1, 1, 2, 3)]
with open("all.npy", "wb") as f:
    for dt in ["u1", "<i4", "<i8", "<f4", "<f8"]:
        for s in shapes:
            if dt == "u1":
                a = rng.integers(0, 256, s).astype(dt)
            elif dt[1] == "i":
                a = rng.integers(-2**31, 2**31, s).astype(dt) * (2**20 if dt == "<i8" else 1)
            else:
                a = (rng.standard_normal(s) * 1000).astype(dt)
            np.save(f, a)
    for s in shapes:
        words = np.array(["samoyed", "shiba_inu", "h\u00e9llo", "", "\u65e5\u672c", "x"])
        np.save(f, np.resize(words, s) if s != () else np.array("samoyed"))
'
	run --separate-stderr tensor-info --json all.npy
	assert_success
	[ -z "$stderr" ]
	echo "$output" > got.jsonl
	run compare_json got.jsonl all.npy
	assert_success
	assert_output "checked 42"
}

@test "tensor-info: np.savez and np.savez_compressed archives" {
	py '
rng = np.random.default_rng(2)
arrays = {"conv1_1/weights1_1": rng.standard_normal((3, 3, 3, 32)).astype("<f4"),
          "step": np.array(400, dtype="<i8"), "classes": np.array(["samoyed", "shiba_inu"]),
          "mask": rng.integers(0, 2, (5, 7)).astype("u1"), "empty": np.zeros((0,), "<f8")}
np.savez("plain.npz", **arrays)
np.savez_compressed("packed.npz", **arrays)
'
	for f in plain.npz packed.npz; do
		run --separate-stderr tensor-info --json $f
		assert_success
		echo "$output" > got.jsonl
		run compare_json got.jsonl $f
		assert_success
		assert_output "checked 5"
	done
	run --separate-stderr tensor-info plain.npz
	assert_line --index 0 --regexp $'^conv1_1/weights1_1\tf4\t\\[3,3,3,32\\]\tmin=-?[0-9.e-]+\tmax=[0-9.e-]+\tmean=-?[0-9.e-]+$'
	assert_line --index 2 $'classes\tU9\t[2]\t"samoyed" "shiba_inu"'
}

@test "tensor-info: a pipe gives what the file gives, stream and npz" {
	py '
with open("s.npy", "wb") as f:
    for i in range(3):
        np.save(f, np.arange(24, dtype="<f8").reshape(2, 3, 4) * i)
np.savez_compressed("z.npz", a=np.arange(5), b=np.ones((2, 2), "<f4"))
'
	for f in s.npy z.npz; do
		run --separate-stderr tensor-info $f
		assert_success
		want=$output
		run --separate-stderr bash -c "cat $f | tensor-info"
		assert_success
		assert_output "$want"
		run --separate-stderr tensor-info - < $f
		assert_output "$want"
	done
	[ "${#lines[@]}" -eq 2 ]
}

@test "tensor-info: headers of format versions 2.0 and 3.0, as numpy writes them" {
	py '
from numpy.lib import format as fmt
fmt.write_array(open("v2.npy", "wb"), np.arange(6, dtype="<i8").reshape(2, 3), version=(2, 0))
fmt.write_array(open("v3.npy", "wb"), np.array(["ab", "c\u00e9"]), version=(3, 0))
'
	run --separate-stderr tensor-info v2.npy v3.npy
	assert_success
	assert_output $'v2.npy:0\ti8\t[2,3]\tmin=0\tmax=5\tmean=2.5\nv3.npy:0\tU2\t[2]\t"ab" "c\xc3\xa9"'
}

@test "tensor-info: several files, names prefixed by the file" {
	py 'np.save("a.npy", np.arange(3, dtype="u1")); np.savez("b.npz", w=np.zeros(2))'
	run --separate-stderr tensor-info a.npy b.npz
	assert_success
	assert_output $'a.npy:0\tu1\t[3]\tmin=0\tmax=2\tmean=1\nb.npz:w\tf8\t[2]\tmin=0\tmax=0\tmean=0'
	run --separate-stderr tensor-info --json a.npy
	assert_output '{"file": "a.npy", "name": "0", "dtype": "u1", "shape": [3], "min": 0, "max": 2, "mean": 1}'
}

@test "tensor-info: a large array is summarised in chunks, from a pipe too" {
	py 'np.save("big.npy", np.arange(3_000_000, dtype="<f4"))'
	run --separate-stderr bash -c "cat big.npy | tensor-info"
	assert_success
	assert_output $'0\tf4\t[3000000]\tmin=0\tmax=2999999\tmean=1499999.5'
}

# Writes bad/<name>.npy for every malformed header or body we promise to refuse.
make_bad_npy() {
	mkdir -p bad
	py '
import struct
def raw(d, body=b"\0" * 24, major=1, cut=None):
    h = d.encode()
    pre = 10 if major == 1 else 12
    hlen = len(h) + 1
    hlen += (64 - (pre + hlen) % 64) % 64
    n = struct.pack("<H" if major == 1 else "<I", hlen)
    b = b"\x93NUMPY" + bytes([major, 0]) + n + h + b" " * (hlen - len(h) - 1) + b"\n" + body
    return b if cut is None else b[:cut]
f4 = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (2, 3), }"
bad = {
    "trunc_header": raw(f4, cut=40),
    "trunc_magic": raw(f4, cut=7),
    "trunc_body": raw(f4, body=b"\0" * 20),
    "bad_magic": b"\x93NUMPZ" + raw(f4)[6:],
    "not_dict": raw("[\x27descr\x27, \x27<f4\x27]"),
    "unknown_dtype": raw(f4.replace("<f4", "<c8")),
    "big_endian": raw(f4.replace("<f4", ">f4")),
    "fortran": raw(f4.replace("False", "True")),
    "overflow": raw(f4.replace("(2, 3)", "(4294967296, 4294967296)")),
    "exceeds_file": raw(f4.replace("(2, 3)", "(1000000000000,)")),
    "negative": raw(f4.replace("(2, 3)", "(2, -3)")),
    "ndim9": raw(f4.replace("(2, 3)", "(1, 1, 1, 1, 1, 1, 1, 1, 1)")),
    "version4": raw(f4)[:6] + b"\x04" + raw(f4)[7:],
}
for k, v in bad.items():
    open("bad/%s.npy" % k, "wb").write(v)
'
}

@test "tensor-info: every malformed .npy is one clear error naming the file, exit 1" {
	make_bad_npy
	while read -r name msg; do
		for how in file pipe; do
			if [ $how = file ]; then
				run --separate-stderr tensor-info bad/$name.npy
				label=bad/$name.npy
			else
				run --separate-stderr bash -c "cat bad/$name.npy | tensor-info"
				label='<stdin>'
			fi
			[ "$status" -eq 1 ] || fail "$name ($how): status $status"
			[ -z "$output" ] || fail "$name ($how): wrote to stdout: $output"
			[ "${#stderr_lines[@]}" -eq 1 ] || fail "$name ($how): not one line: $stderr"
			[[ $stderr == "tensor-info: $label: "*"$msg"* ]] || fail "$name ($how): '$stderr' lacks '$label: ... $msg'"
		done
	done <<-'EOF'
	trunc_header truncated header
	trunc_magic truncated header
	trunc_body truncated data: expected 24 bytes, got 20
	bad_magic bad magic
	not_dict header is not a dict
	unknown_dtype unknown dtype '<c8'
	big_endian big-endian dtype '>f4'
	fortran fortran_order True is not supported
	overflow byte count overflows 64 bits
	exceeds_file truncated data: expected 4000000000000 bytes, got 24
	negative negative dimension
	ndim9 more than 8 dimensions
	version4 unsupported .npy version 4.0
	EOF
}

@test "tensor-info: a bad array after good ones: the good ones printed, then exit 1" {
	make_bad_npy
	py 'np.save("good.npy", np.arange(4, dtype="<i4"))'
	cat good.npy good.npy bad/trunc_body.npy > mixed.npy
	run --separate-stderr tensor-info mixed.npy good.npy
	assert_failure 1
	assert_output $'mixed.npy:0\ti4\t[4]\tmin=0\tmax=3\tmean=1.5\nmixed.npy:1\ti4\t[4]\tmin=0\tmax=3\tmean=1.5\ngood.npy:0\ti4\t[4]\tmin=0\tmax=3\tmean=1.5'
	assert_equal "$stderr" "tensor-info: mixed.npy: truncated data: expected 24 bytes, got 20 (the file ends first)"
}

@test "tensor-info: every malformed .npz is one clear error naming the file and member" {
	py '
import zipfile, io, warnings
def npy(a):
    b = io.BytesIO(); np.save(b, a); return b.getvalue()
good = npy(np.arange(3, dtype="<f4"))
hdr = good[:10] + good[10:good.index(b"}") + 1].replace(b"(3,)", b"(999999999999,)")
hdr += b" " * (64 - (len(hdr) + 1) % 64) + b"\n"
cases = {
    "not_npy": [("a.npy", good), ("README.txt", b"hello")],
    "bad_member": [("a.npy", good), ("b.npy", b"not an array")],
    "huge_claim": [("a.npy", good), ("b.npy", hdr + b"\0" * 12)],
    "trailing": [("a.npy", good), ("b.npy", good + b"extra")],
    "duplicate": [("a.npy", good), ("a.npy", good)],
}
warnings.simplefilter("ignore")
for name, members in cases.items():
    for comp in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with zipfile.ZipFile("%s_%d.npz" % (name, comp), "w", comp) as z:
            for m, data in members:
                z.writestr(m, data)
# The uncompressed size in both zip headers of the second member patched to almost 4 GiB.
import struct
for comp in (0, 8):
    with zipfile.ZipFile("huge_sizes_%d.npz" % comp, "w", comp) as z:
        z.writestr("a.npy", good)
        z.writestr("b.npy", good)
    d = bytearray(open("huge_sizes_%d.npz" % comp, "rb").read())
    loc = d.index(b"PK\x03\x04", 4)
    cen = d.index(b"PK\x01\x02")
    cen = d.index(b"PK\x01\x02", cen + 4)
    d[loc + 22:loc + 26] = struct.pack("<I", 0xfffffff0)
    d[cen + 24:cen + 28] = struct.pack("<I", 0xfffffff0)
    open("huge_sizes_%d.npz" % comp, "wb").write(d)
'
	# Each line: a case, then a pattern its message must hold (the deflated huge_sizes is
	# caught by libarchive first, the stored one by us: both name the member and the claim).
	while read -r name msg; do
		for f in ${name}_0.npz ${name}_8.npz; do
			run --separate-stderr tensor-info $f
			[ "$status" -eq 1 ] || fail "$f: status $status"
			[ "${#stderr_lines[@]}" -eq 1 ] || fail "$f: not one line: $stderr"
			# shellcheck disable=SC2053 # msg is a pattern
			[[ $stderr == "tensor-info: $f: "*$msg* ]] || fail "$f: '$stderr' lacks '$msg'"
			# The good member before the bad one is still shown.
			assert_output $'a\tf4\t[3]\tmin=0\tmax=2\tmean=1'
			run --separate-stderr bash -c "tensor-info < $f"
			[ "$status" -eq 1 ] || fail "$f (stdin): status $status"
			[[ $stderr == "tensor-info: <stdin>: "*$msg* ]] || fail "$f (stdin): '$stderr' lacks '$msg'"
		done
	done <<-'EOF'
	not_npy member 'README.txt': not a .npy member
	bad_member member 'b.npy': bad magic
	huge_claim member 'b.npy': the zip claims 140 bytes, its .npy array takes 4000000000124
	trailing member 'b.npy': the zip claims 145 bytes, its .npy array takes 140
	huge_sizes member 'b.npy': *4294967280
	duplicate member 'a.npy': duplicate member
	EOF
}

@test "tensor-info: a missing file, an empty file, a zip that is not one" {
	run --separate-stderr tensor-info no-such.npy
	assert_failure 1
	[[ $stderr == "tensor-info: no-such.npy: cannot open: No such file or directory" ]] || fail "$stderr"
	: > empty.npy
	run --separate-stderr tensor-info empty.npy
	assert_failure 1
	assert_output ''
	[[ $stderr == "tensor-info: empty.npy: empty: no array in it" ]] || fail "$stderr"
	run --separate-stderr tensor-info < empty.npy
	assert_failure 1
	[[ $stderr == "tensor-info: <stdin>: empty: no array in it" ]] || fail "$stderr"
	run --separate-stderr tensor-info < /dev/null
	assert_failure 1
	[[ $stderr == "tensor-info: <stdin>: empty: no array in it" ]] || fail "$stderr"
	py 'np.savez("none.npz")'
	run --separate-stderr tensor-info none.npz
	assert_failure 1
	[[ $stderr == "tensor-info: none.npz: no array in the archive" ]] || fail "$stderr"
	# the others are still described, the status tells of the empty one
	py 'np.save("one.npy", np.arange(3))'
	run --separate-stderr tensor-info one.npy empty.npy
	assert_failure 1
	assert_output --partial 'one.npy:0	i8	[3]'
	printf 'PK\003\004 this is not really a zip' > fake.npz
	run --separate-stderr tensor-info fake.npz
	assert_failure 1
	[[ $stderr == "tensor-info: fake.npz: "* ]] || fail "$stderr"
}
