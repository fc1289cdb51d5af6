#!/usr/bin/env bats
# pet-split on a small Pet folder made by Pillow (tests/fixtures/mkpets.py) with the real
# set's quirks, checked against python reading the same annotation files; and on pet-synth's
# sample (pet-synth is part of the build: missing, the test fails).
load helper

setup_file() {
	export DATA=$BATS_FILE_TMPDIR/pets
	"$PY" "$FIXTURES/mkpets.py" "$DATA"
}

@test "pet-split: --help, --version, bad option" {
	check_conventions pet-split
}

@test "pet-split: fraction split is stratified, labelled in --breeds order, counted on stderr" {
	run --separate-stderr pet-split "$DATA" --breeds SAMOYED,abyssinian --test 0.25 --seed 3
	assert_success
	echo "$output" > "$BATS_TEST_TMPDIR/l.tsv"
	assert_line --index 0 '# classes: samoyed Abyssinian'
	# per class: the images listed and on disk; round(0.25 n) of them in test
	py '
import collections, os
d, tsv = sys.argv[1], sys.argv[2]
listed = [l.split()[0] for l in open(d + "/annotations/list.txt") if not l.startswith("#")]
rows = [l.rstrip("\n").split("\t") for l in open(tsv) if not l.startswith("#")]
for label, breed in enumerate(["samoyed", "Abyssinian"]):
    want = {s for s in listed if s.rsplit("_", 1)[0] == breed and os.path.exists(f"{d}/images/{s}.jpg")}
    got = [r for r in rows if r[2] == breed]
    assert {os.path.basename(r[0])[:-4] for r in got} == want, breed
    assert all(r[1] == str(label) and os.path.isabs(r[0]) and os.path.exists(r[0]) for r in got)
    ntest = sum(r[3] == "test" for r in got)
    assert ntest == int(0.25 * len(want) + 0.5), (breed, ntest, len(want))
assert len(rows) == len({r[0] for r in rows})
' "$DATA" "$BATS_TEST_TMPDIR/l.tsv"
	[[ $stderr == *"class 0 samoyed: 8 train, 3 test"* ]] || fail "counts: $stderr"
	[[ $stderr == *"1 images in list.txt missing"* ]] || fail "missing not reported: $stderr"
	[[ $stderr == *"1 images not in list.txt, e.g. Bengal_13.jpg"* ]] || fail "unlisted: $stderr"
	[[ $stderr == *"2 unusable files"* ]] || fail "unusable: $stderr"
}

@test "pet-split: same seed same bytes, another seed another split" {
	pet-split "$DATA" --seed 5 -q > "$BATS_TEST_TMPDIR/a"
	pet-split "$DATA" --seed 5 -q > "$BATS_TEST_TMPDIR/b"
	pet-split "$DATA" --seed 6 -q > "$BATS_TEST_TMPDIR/c"
	cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	cmp -s "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/c" && fail "seeds 5 and 6 gave the same split"
	# every breed, sorted case-insensitively as the CLASS-IDs are
	run head -1 "$BATS_TEST_TMPDIR/a"
	assert_output '# classes: Abyssinian Bengal samoyed shiba_inu'
	# one breed's split does not depend on which other breeds were chosen
	pet-split "$DATA" --seed 5 -q --breeds shiba_inu | grep -v '^#' | cut -f1,4 > "$BATS_TEST_TMPDIR/one"
	grep -v '^#' "$BATS_TEST_TMPDIR/a" | grep shiba_inu | cut -f1,4 > "$BATS_TEST_TMPDIR/all"
	cmp "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/all"
}

@test "pet-split: --official follows trainval.txt and test.txt; -o writes the same rows" {
	run --separate-stderr pet-split "$DATA" --official --species dog -o "$BATS_TEST_TMPDIR/lists"
	assert_success
	assert_output ''
	pet-split "$DATA" --official --species dog -q > "$BATS_TEST_TMPDIR/stdout.tsv"
	py '
import os
d, lists, out = sys.argv[1:4]
def stems(f): return {l.split()[0] for l in open(f)}
tv, te = stems(d + "/annotations/trainval.txt"), stems(d + "/annotations/test.txt")
rows = [l.rstrip("\n").split("\t") for l in open(out) if not l.startswith("#")]
assert {r[2] for r in rows} == {"samoyed", "shiba_inu"}
for r in rows:
    s = os.path.basename(r[0])[:-4]
    assert (r[3] == "train" and s in tv) or (r[3] == "test" and s in te), r
for split in ("train", "test"):
    got = [l.rstrip("\n").split("\t") for l in open(f"{lists}/{split}.tsv") if not l.startswith("#")]
    assert got == [r[:3] for r in rows if r[3] == split], split
    assert open(f"{lists}/{split}.tsv").readline() == "# classes: samoyed shiba_inu\n"
' "$DATA" "$BATS_TEST_TMPDIR/lists" "$BATS_TEST_TMPDIR/stdout.tsv"
}

@test "pet-split: --folders lays out train/<class>/ and test/<class>/ with links" {
	run --separate-stderr pet-split "$DATA" --breeds samoyed,Bengal -q --folders "$BATS_TEST_TMPDIR/f"
	assert_success
	echo "$output" > "$BATS_TEST_TMPDIR/l.tsv"
	for split in train test; do
		for c in samoyed Bengal; do
			want=$(awk -F'\t' -v s=$split -v c=$c '$3 == c && $4 == s' "$BATS_TEST_TMPDIR/l.tsv" | wc -l)
			got=$(find "$BATS_TEST_TMPDIR/f/$split/$c" -type l | wc -l)
			[ "$want" -gt 0 ] && [ "$want" = "$got" ] || fail "$split/$c: $got links, want $want"
		done
	done
	cmp "$BATS_TEST_TMPDIR/f/train/samoyed/samoyed_1.jpg" "$DATA/images/samoyed_1.jpg" ||
		cmp "$BATS_TEST_TMPDIR/f/test/samoyed/samoyed_1.jpg" "$DATA/images/samoyed_1.jpg"
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/f" | grep -v '^train$\|^test$')" ]
	# never mixed into an earlier layout
	run --separate-stderr pet-split "$DATA" -q --folders "$BATS_TEST_TMPDIR/f"
	assert_failure 1
	[[ $stderr == *"already exists"* ]]
}

@test "pet-split: unknown breed, missing folder, bad list.txt: clear errors, nothing written" {
	run --separate-stderr pet-split "$DATA" --breeds samoyed,pug -o "$BATS_TEST_TMPDIR/out"
	assert_failure 1
	assert_output ''
	[[ $stderr == "pet-split: unknown breed 'pug'"* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/out/train.tsv" ]
	run --separate-stderr pet-split "$BATS_TEST_TMPDIR/nowhere"
	assert_failure 1
	[[ $stderr == *"nowhere"* ]]
	cp -r "$DATA" "$BATS_TEST_TMPDIR/bad"
	echo "samoyed_1 three" >> "$BATS_TEST_TMPDIR/bad/annotations/list.txt"
	run --separate-stderr pet-split "$BATS_TEST_TMPDIR/bad"
	assert_failure 1
	assert_output ''
	[[ $stderr == *"annotations/list.txt:55:"* ]] || fail "$stderr"
	# names become folder names: no way out of --folders DIR
	cp "$DATA/annotations/list.txt" "$BATS_TEST_TMPDIR/bad/annotations/list.txt"
	echo "../../evil_1 1 1 1" >> "$BATS_TEST_TMPDIR/bad/annotations/list.txt"
	run --separate-stderr pet-split "$BATS_TEST_TMPDIR/bad" --folders "$BATS_TEST_TMPDIR/ff"
	assert_failure 1
	[[ $stderr == *"list.txt:55: bad image name '../../evil_1'"* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/ff" ]
	run --separate-stderr pet-split "$DATA" --species fish
	assert_failure 2
	run --separate-stderr pet-split "$DATA" --test 1.5
	assert_failure 2
}

@test "pet-split: pet-synth's sample, every quirk in it" {
	command -v pet-synth >/dev/null || fail "pet-synth not built"
	pet-synth -q -o "$BATS_TEST_TMPDIR/s" --per-breed 12 --seed 2
	mkdir "$BATS_TEST_TMPDIR/x"
	tar -xzf "$BATS_TEST_TMPDIR/s/images.tar.gz" -C "$BATS_TEST_TMPDIR/x"
	tar -xzf "$BATS_TEST_TMPDIR/s/annotations.tar.gz" -C "$BATS_TEST_TMPDIR/x"
	run --separate-stderr pet-split "$BATS_TEST_TMPDIR/x" --test 0.25 --seed 1
	assert_success
	[[ $stderr == *"not in list.txt"* && $stderr == *"unusable files"* ]] || fail "$stderr"
	py '
import collections
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if not l.startswith("#")]
c = collections.Counter((r[2], r[3]) for r in rows)
for b in {r[2] for r in rows}:
    n = c[(b, "train")] + c[(b, "test")]
    assert c[(b, "test")] == int(0.25 * n + 0.5), (b, c)
' <<< "$output"
}

@test "pet-split: --folders that cannot be made: fails before any list is written" {
	# as root a read-only folder does not stop writes; a path under a regular file does
	touch "$BATS_TEST_TMPDIR/file"
	run --separate-stderr pet-split "$DATA" -q -o "$BATS_TEST_TMPDIR/lists" --folders "$BATS_TEST_TMPDIR/file/f"
	assert_failure 1
	[[ $stderr == "pet-split: $BATS_TEST_TMPDIR/file/f: Not a directory"* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/lists" ] || fail "lists written: $(ls "$BATS_TEST_TMPDIR/lists")"
	# the other way round: lists that cannot be written leave no layout behind, and no
	# folder this run made
	run --separate-stderr pet-split "$DATA" -q -o "$BATS_TEST_TMPDIR/file/lists" --folders "$BATS_TEST_TMPDIR/f"
	assert_failure 1
	[[ $stderr == *"file/lists"* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/f" ] || fail "layout left: $(find "$BATS_TEST_TMPDIR/f")"
	mkdir "$BATS_TEST_TMPDIR/g"
	run --separate-stderr pet-split "$DATA" -q -o "$BATS_TEST_TMPDIR/file/lists" --folders "$BATS_TEST_TMPDIR/g"
	assert_failure 1
	[ -d "$BATS_TEST_TMPDIR/g" ] && [ -z "$(ls -A "$BATS_TEST_TMPDIR/g")" ] || fail "$(find "$BATS_TEST_TMPDIR/g")"
}

@test "pet-split: a FIFO named .jpg is unusable, not waited on" {
	cp -r "$DATA" "$BATS_TEST_TMPDIR/d"
	rm "$BATS_TEST_TMPDIR/d/images/samoyed_1.jpg"
	mkfifo "$BATS_TEST_TMPDIR/d/images/samoyed_1.jpg"
	run --separate-stderr timeout 20 pet-split "$BATS_TEST_TMPDIR/d" --breeds samoyed
	assert_success
	[[ $stderr == *"3 unusable files"* && $stderr == *"2 images in list.txt missing"* ]] || fail "$stderr"
	refute_output --partial samoyed_1.jpg
}

@test "pet-split: many breeds, each its own class, in CLASS-ID order" {
	mkdir -p "$BATS_TEST_TMPDIR/m/annotations" "$BATS_TEST_TMPDIR/m/images"
	py '
import os
d = sys.argv[1]
names = ["Br%04d" % i if i % 3 == 0 else "br%04d" % i for i in range(3000)][::-1]
with open(d + "/annotations/list.txt", "w") as f:
    for k in (1, 2):
        for n in names:
            f.write(f"{n}_{k} 1 {2 if n[0] == chr(98) else 1} 1\n")
            open(f"{d}/images/{n}_{k}.jpg", "wb").write(b"\xff\xd8\xff\xe0")
open(d + "/annotations/trainval.txt", "w").close(); open(d + "/annotations/test.txt", "w").close()
' "$BATS_TEST_TMPDIR/m"
	run --separate-stderr pet-split "$BATS_TEST_TMPDIR/m" --test 0.5 --breeds br0002,Br2997,BR0003
	assert_success
	assert_line --index 0 '# classes: br0002 Br2997 Br0003'
	[ "$(grep -vc '^#' <<< "$output")" = 6 ]
	run --separate-stderr pet-split "$BATS_TEST_TMPDIR/m" --test 0.5 -q
	assert_success
	py '
rows = [l.rstrip("\n").split("\t") for l in sys.stdin]
names = rows[0][0][len("# classes: "):].split()
assert names == sorted(names, key=str.lower) and len(names) == 3000, names[:5]
rows = [r for r in rows if not r[0].startswith("#")]
assert len(rows) == 6000
for i, r in enumerate(rows):
    assert r[2] == names[int(r[1])] and r[2] == names[i // 2] and r[0].endswith("/%s_%d.jpg" % (r[2], i % 2 + 1)), r
assert sum(r[3] == "test" for r in rows) == 3000
' <<< "$output"
	run --separate-stderr pet-split "$BATS_TEST_TMPDIR/m" --species cat -q
	[ "$(head -1 <<< "$output" | wc -w)" = $((2 + 1000)) ]
}
