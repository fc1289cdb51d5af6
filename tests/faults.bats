#!/usr/bin/env bats
# Faults and hostile conditions that cut across programs: outputs that are not regular
# files, closed standard descriptors, a full stdout, a run killed at any moment.

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
	# A model whose checkpoint takes a while to write, killed at several moments.
	local model="c1=conv:3x3:8 fc=dense:4096 out=dense:K"
	mkdir w
	for delay in 0.3 0.6 0.9 1.2 1.5; do
		cnn-train -q --train "$D/ds.npy" -o w/m.npz --epochs 1000 --batch 3 --model "$model" >/dev/null 2>&1 &
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
	for _ in $(seq 100); do [ -e h.npz ] && break; sleep 0.1; done
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

@test "faults: background checkpoints: SIGKILL at any moment leaves a complete checkpoint of some step, and the writing stops" {
	# a checkpoint after every step, each ~50 MB with Adam's moments, so the writer is
	# caught at work; the file is replaced only by a complete one
	local model="c1=conv:3x3:8 fc=dense:4096 out=dense:K" steps=""
	mkdir w
	for delay in 0.4 0.7 1.0 1.3 1.6 1.9; do
		cnn-train -q --train "$D/ds.npy" -o w/m.npz --epochs 100000 --batch 3 --model "$model" \
			--checkpoint-every 1s >/dev/null 2>&1 &
		sleep "$delay"
		kill -KILL $! 2>/dev/null || true
		wait $! 2>/dev/null || true
		local before
		before=$(stat -c '%i %Y' w/m.npz 2>/dev/null || true)
		# the writer dies with the run: nothing lands after the kill
		sleep 0.5
		[ "$(stat -c '%i %Y' w/m.npz 2>/dev/null || true)" = "$before" ] || fail "written after SIGKILL at ${delay}s"
		[ -z "$(ls -A w | grep -v '^m\.npz$')" ] || fail "after SIGKILL at ${delay}s: $(ls -A w)"
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
