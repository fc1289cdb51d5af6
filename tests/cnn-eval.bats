#!/usr/bin/env bats
# cnn-eval: scores a checkpoint; its figures agree with numpy's from its own predictions.

load helper

SMALL="c1=conv:3x3:8 p1=maxpool:2x2 c2=conv:3x3:16 p2=maxpool:2x2 drop:conv fc=dense:32 drop:fc out=dense:K"

setup_file() {
	local py=${PETCNN_PYTHON:-/usr/bin/python3} d=$BATS_FILE_TMPDIR
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 100 24 1 "$d/train.npy"
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 37 24 2 "$d/test.npy"
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 37 24 2 "$d/unl.npy" unlabelled
	"$PETCNN_BIN/cnn-train" --train "$d/train.npy" --test "$d/test.npy" -o "$d/m.npz" --model "$SMALL" \
		--init he --lr 1e-2 --epochs 3 -q > "$d/train.log"
}

@test "cnn-eval: conventions" {
	check_conventions cnn-eval
}

@test "cnn-eval: accuracy, loss, confusion and per-class figures agree with its predictions" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" -p "$t/pred.tsv" "$d/test.npy"
	assert_success
	assert_line --index 0 "images 37, scored 37"
	assert_output --partial "confusion (rows true, columns predicted)"
	echo "$output" > "$t/report"
	run py '
import csv
rows = list(csv.reader(open(sys.argv[1]), delimiter="\t"))
assert rows[0] == ["index", "label", "predicted", "p_square", "p_circle"], rows[0]
r = np.array([[float(x) for x in row] for row in rows[1:]])
assert len(r) == 37 and (r[:, 0] == np.arange(37)).all()
f = open(sys.argv[3], "rb"); np.load(f); lab = np.load(f)
assert (r[:, 1] == lab).all()
p = r[:, 3:]
assert np.allclose(p.sum(1), 1, atol=1e-5) and (r[:, 2] == p.argmax(1)).all()
rep = open(sys.argv[2]).read().split("\n")
acc = float(rep[1].split()[1]); loss = float(rep[2].split()[1])
assert abs(acc - (r[:, 2] == lab).mean()) < 1e-4, acc
# the loss from 6-digit probabilities: agreement to 1e-3
want = -np.log(p[np.arange(37), lab.astype(int)]).mean()
assert abs(loss - want) < 1e-3, (loss, want)
conf = np.zeros((2, 2), int)
for y, q in zip(lab, r[:, 2].astype(int)): conf[y, q] += 1
assert rep[5].split() == ["square", "circle"], rep[5]
sq = rep[6].split(); ci = rep[7].split()
assert sq[0] == "square" and [int(x) for x in sq[1:]] == list(conf[0]), (sq, conf)
assert ci[0] == "circle" and [int(x) for x in ci[1:]] == list(conf[1]), (ci, conf)
prec = conf[0, 0] / max(conf[:, 0].sum(), 1); rec = conf[0, 0] / conf[0].sum()
line = rep[10].split()
assert line[0] == "square" and abs(float(line[1]) - prec) < 1e-4 and abs(float(line[2]) - rec) < 1e-4, line
' "$t/pred.tsv" "$t/report" "$d/test.npy"
	assert_success
}

@test "cnn-eval: loss and accuracy match cnn-train's end-of-epoch test figures" {
	local d=$BATS_FILE_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" --format tsv "$d/test.npy"
	assert_success
	local acc loss
	acc=$(awk '$2 == "test_epoch/Accuracy" { v = $3 } END { print v }' "$d/train.log")
	loss=$(awk '$2 == "test_epoch/Loss" { v = $3 } END { print v }' "$d/train.log")
	assert_line --index 0 "30 eval/Accuracy $acc"
	assert_line --index 1 "30 eval/Loss $loss"
	assert_line --index 2 --regexp '^30 eval/precision/square [0-9.e-]+$'
	[ "${#lines[@]}" -eq 8 ]
}

@test "cnn-eval: stdin gives the file's result" {
	local d=$BATS_FILE_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" "$d/test.npy"
	assert_success
	local a=$output
	run --separate-stderr cnn-eval -m "$d/m.npz" < "$d/test.npy"
	assert_success
	[ "$output" = "$a" ]
	run --separate-stderr cnn-eval -m "$d/m.npz" --batch 5 - < "$d/test.npy"
	assert_success
	[ "$output" = "$a" ]
}

@test "cnn-eval: images labelled -1 are predicted, not scored" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" -p "$t/all.tsv" "$d/test.npy"
	assert_success
	run --separate-stderr cnn-eval -m "$d/m.npz" -p "$t/unl.tsv" "$d/unl.npy"
	assert_success
	assert_line --index 0 "images 37, scored 18"
	# same predictions, label column -1 on the even rows
	run py '
a = np.loadtxt(sys.argv[1], skiprows=1); u = np.loadtxt(sys.argv[2], skiprows=1)
assert (a[:, 2:] == u[:, 2:]).all() and (u[::2, 1] == -1).all() and (u[1::2, 1] == a[1::2, 1]).all()
' "$t/all.tsv" "$t/unl.tsv"
	assert_success
}

@test "cnn-eval: bad inputs are clear errors naming the file, and nothing is written" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	py 'import numpy as np
with open(sys.argv[1], "wb") as f:
    np.save(f, np.zeros((2, 24, 24, 3), np.uint8)); np.save(f, np.array([0, 1])); np.save(f, np.array(["cat", "dog"]))
with open(sys.argv[2], "wb") as f:
    np.save(f, np.zeros((2, 16, 16, 3), np.uint8)); np.save(f, np.array([0, 1])); np.save(f, np.array(["square", "circle"]))
' "$t/classes.npy" "$t/size.npy"
	run --separate-stderr cnn-eval -m "$d/m.npz" -p "$t/p.tsv" "$t/classes.npy"
	assert_failure 1
	[[ $stderr == *"classes.npy: class 0 is 'cat'"* ]] || fail "$stderr"
	run --separate-stderr cnn-eval -m "$d/m.npz" -p "$t/p.tsv" "$t/size.npy"
	assert_failure 1
	[[ $stderr == *"the model takes 24x24 images, these are 16x16"* ]] || fail "$stderr"
	run --separate-stderr cnn-eval -m "$d/test.npy" -p "$t/p.tsv" "$d/test.npy"
	assert_failure 1
	[[ $stderr == "cnn-eval: $d/test.npy"* ]] || fail "$stderr"
	py 'z = dict(np.load(sys.argv[1])); del z["fc/weights3_1"]; np.savez(sys.argv[2], **z)' "$d/m.npz" "$t/nofc.npz"
	run --separate-stderr cnn-eval -m "$t/nofc.npz" -p "$t/p.tsv" "$d/test.npy"
	assert_failure 1
	[[ $stderr == *"nofc.npz: no array 'fc/weights3_1'"* ]] || fail "$stderr"
	run --separate-stderr cnn-eval -m "$t/missing.npz" "$d/test.npy"
	assert_failure 1
	[[ $stderr == "cnn-eval: $t/missing.npz"* ]] || fail "$stderr"
	[ ! -e "$t/p.tsv" ]
	[ -z "$output" ]
	run --separate-stderr cnn-eval "$d/test.npy"
	assert_failure 2
}

@test "cnn-eval: a checkpoint's members load in any order, and the optimiser state is never held" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" -p "$t/a.tsv" "$d/test.npy"
	assert_success
	# parameters before the metadata, the Adam state between them
	py '
z = np.load(sys.argv[1]); names = sorted(z.files, key=lambda n: (not n.startswith(("adam/", "fc/", "c1/")), n))
assert names[0].startswith(("adam/", "c1/", "fc/")) and names[-1] in ("train/step", "train/seed"), names
np.savez(sys.argv[2], **{n: z[n] for n in names})' "$d/m.npz" "$t/reordered.npz"
	run --separate-stderr cnn-eval -m "$t/reordered.npz" -p "$t/b.tsv" "$d/test.npy"
	assert_success
	cmp "$t/a.tsv" "$t/b.tsv"
}

@test "cnn-eval: peak memory stays below twice the parameters (Adam's m and v are skipped)" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR scale=8
	# Under AddressSanitizer the runtime's own memory is measured first and taken off, its
	# quarantine is turned off, and its shadow (1/8 of what is used) is allowed for.
	if ldd "$PETCNN_BIN/cnn-eval" | grep -q libasan; then
		export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
		scale=9
	fi
	/usr/bin/time -f 'peak %M' -o "$t/base" cnn-eval --version > /dev/null
	# the seed's network at 64x64: fc1 alone is 16384x512, 34 MB of parameters and 101 MB
	# of checkpoint with the optimiser's state
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 10 64 1 "$t/train64.npy"
	cnn-train --train "$t/train64.npy" -o "$t/m64.npz" --stop-after 1 -q > /dev/null
	local bytes
	bytes=$(py 'z = np.load(sys.argv[1]); print(sum(z[n].nbytes for n in z.files if "/" in n and not n.startswith(("adam/", "train/", "model/"))))' "$t/m64.npz")
	[ "$bytes" -gt 30000000 ]
	run --separate-stderr /usr/bin/time -f 'peak %M' -o "$t/time" cnn-eval --batch 1 -m "$t/m64.npz" "$t/train64.npy"
	assert_success
	local kb base
	kb=$(awk '/^peak/ { print $2 }' "$t/time")
	base=$(awk '/^peak/ { print $2 }' "$t/base")
	[ "$kb" -gt "$base" ]
	(( (kb - base) * 1024 * 8 < 2 * bytes * scale )) ||
		fail "peak RSS $kb KB ($base KB before any work) against $bytes bytes of parameters"
}

@test "cnn-eval: --progress draws the bar from lib/evaluate's reports, to the last image; -q none" {
	local d=$BATS_FILE_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" --batch 8 --progress "$d/test.npy"
	assert_success
	[ "$(printf '%s\n' "$stderr" | awk -F '\r' 'NF > 1 { print $NF }' | grep -o '] [0-9]*/[0-9]*')" = "] 37/37" ]
	run --separate-stderr cnn-eval -m "$d/m.npz" --batch 8 -q "$d/test.npy"
	assert_success
	[ -z "$stderr" ]
}
