#!/usr/bin/env bats
# cnn-train: learns, checkpoints in the seed's names, resumes exactly, refuses bad input.

load helper

SMALL="c1=conv:3x3:8 p1=maxpool:2x2 c2=conv:3x3:16 p2=maxpool:2x2 drop:conv fc=dense:32 drop:fc out=dense:K"

setup_file() {
	local py=${PETCNN_PYTHON:-/usr/bin/python3} d=$BATS_FILE_TMPDIR
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 200 32 1 "$d/train.npy"
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 100 32 2 "$d/test.npy"
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 20 16 3 "$d/train16.npy"
}

@test "cnn-train: conventions" {
	check_conventions cnn-train
}

@test "cnn-train: learns squares from discs (loss falls, test accuracy >= 90%)" {
	local d=$BATS_FILE_TMPDIR
	run --separate-stderr cnn-train --train "$d/train.npy" --test "$d/test.npy" -o "$BATS_TEST_TMPDIR/m.npz" \
		--model "$SMALL" --init he --lr 1e-2 --epochs 10 --keep-conv 0.8 --keep-fc 0.8 --seed 1
	assert_success
	# every line is STEP TAG VALUE
	run py '
import re, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no metrics"
for l in lines:
    assert re.fullmatch(r"\d+ (train|test|test_epoch)/(Loss|Accuracy) [-+0-9.e]+|\d+ test_epoch/(Loss|Accuracy) (nan|inf)", l), l
ep = [(int(l.split()[0]), float(l.split()[2])) for l in lines if l.split()[1] == "test_epoch/Loss"]
acc = [float(l.split()[2]) for l in lines if l.split()[1] == "test_epoch/Accuracy"]
assert len(ep) == 10 and [s for s, _ in ep] == list(range(20, 201, 20)), ep
assert ep[-1][1] < 0.5 * ep[0][1], ("loss did not fall", ep)
assert acc[-1] >= 0.9, ("test accuracy", acc)
tr = [int(l.split()[0]) for l in lines if l.split()[1] == "train/Loss"]
assert tr == list(range(5, 201, 5)), tr
' <(echo "$output")
	assert_success
}

@test "cnn-train: the default network's checkpoint loads in numpy with the seed's names and shapes" {
	local d=$BATS_FILE_TMPDIR m=$BATS_TEST_TMPDIR/m.npz
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$m" --epochs 1 --batch 10 -q --profile
	assert_success
	# --profile: a line per layer and the optimiser, in ms per step; the first step (page
	# faults of first touches) left out when more follow
	[[ $stderr == *"profile over 1 step after the first,"* ]] || fail "$stderr"
	[[ $stderr =~ conv1_1\ +conv\ +16x16x32\ +[0-9.]+\ +[0-9.]+ ]] || fail "$stderr"
	[[ $stderr =~ optimiser\ +[0-9.]+ ]] || fail "$stderr"
	run py '
z = np.load(sys.argv[1])
want = {"conv1_1/weights1_1": (3, 3, 3, 32), "conv1_1/biases1_1": (32,),
        "conv1_2/weights1_2": (3, 3, 32, 32), "conv1_2/biases1_2": (32,),
        "conv2_1/weights2_1": (3, 3, 32, 64), "conv2_1/biases2_1": (64,),
        "conv2_2/weights2_2": (3, 3, 64, 64), "conv2_2/biases2_2": (64,),
        "fc1/weights3_1": (4 * 4 * 64, 512), "fc1/biases3_1": (512,),
        "softmax/weights3_2": (512, 2), "softmax/biases3_2": (2,)}
for k, s in want.items():
    assert z[k].shape == s and z[k].dtype == np.float32, (k, z[k].shape)
    assert z["adam/m/" + k].shape == s and z["adam/v/" + k].shape == s, k
assert list(z["classes"]) == ["square", "circle"]
assert int(z["train/step"]) == 2 and int(z["train/seed"]) == 1
assert list(z["model/input"]) == [16, 16, 3]
assert str(z["model/spec"][0]).startswith("conv1_1=conv:3x3:32 ")
# Adam has moved every weight away from its truncated-normal start, within 2 sd + lr
w = z["conv1_1/weights1_1"]
assert np.abs(w).max() <= 0.2 + 1e-4 and w.std() > 0.05
' "$m"
	assert_success
}

@test "cnn-train: same seed, same bytes; stdin gives the file's result" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/a.npz" --epochs 2 --model "$SMALL" --seed 7
	assert_success
	local a=$output
	run --separate-stderr cnn-train --train - -o "$t/b.npz" --epochs 2 --model "$SMALL" --seed 7 < "$d/train16.npy"
	assert_success
	[ "$output" = "$a" ]
	cmp "$t/a.npz" "$t/b.npz"
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/c.npz" --epochs 2 --model "$SMALL" --seed 8
	assert_success
	! cmp -s "$t/a.npz" "$t/c.npz"
}

@test "cnn-train: the same bytes whatever --threads, on every path the CPU has (PETCNN_ISA)" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR isa
	# 32x32: the direct conv kernels, and fc1 (4096 x 512) streaming with Adam fused in
	for isa in $(isa_paths); do
		for n in 1 2 3; do
			PETCNN_ISA=$isa run --separate-stderr cnn-train --train "$d/train.npy" -o "$t/$isa$n.npz" \
				--stop-after 3 -q --threads "$n" --profile
			assert_success
			# the path asked for is the path taken
			[[ $stderr == *"threads, $isa, OpenBLAS core "* ]] || fail "$isa: $stderr"
		done
		if [ "$isa" != generic ]; then
			cmp "$t/${isa}1.npz" "$t/${isa}2.npz"
			cmp "$t/${isa}1.npz" "$t/${isa}3.npz"
		fi
	done
	# generic hands the convolutions to OpenBLAS, whose threaded sgemm's bits depend on its
	# thread count: there, only 3 Adam steps of lr 1e-5 apart at most
	run py '
a = np.load(sys.argv[1])
for f in sys.argv[2:]:
    b = np.load(f)
    for k in a.files:
        if a[k].dtype == np.float32 and not k.startswith(("adam/", "train/")):
            d = float(np.abs(a[k] - b[k]).max())
            assert d < 1e-4, (f, k, d)
' "$t/generic1.npz" "$t/generic2.npz" "$t/generic3.npz"
	assert_success
	# AVX-512's tiles sum in AVX2's order: the same bits
	if [ -f "$t/avx5121.npz" ]; then cmp "$t/avx21.npz" "$t/avx5121.npz"; fi
	isa_paths | grep -qx avx512 || echo "# the avx512 path was not tested: this CPU lacks it" >&3
}

@test "cnn-train: PETCNN_ISA names a path; another value is an error, and --profile says each conv's kernels" {
	local d=$BATS_FILE_TMPDIR
	PETCNN_ISA=sse9 run --separate-stderr cnn-train --train "$d/train16.npy" -o "$BATS_TEST_TMPDIR/m.npz" --epochs 1 -q
	assert_failure 1
	assert_output ''
	[[ $stderr == "cnn-train: PETCNN_ISA=sse9: not generic, avx2 or avx512"* ]] || fail "$stderr"
	[ ! -e "$BATS_TEST_TMPDIR/m.npz" ]
	PETCNN_ISA=generic run --separate-stderr cnn-train --train "$d/train16.npy" -o "$BATS_TEST_TMPDIR/m.npz" \
		--epochs 1 -q --profile
	assert_success
	[[ $stderr =~ conv1_2\ +conv\ +16x16x32\ +[0-9.]+\ +[0-9.]+\ +sgemm ]] || fail "$stderr"
	if ! isa_paths | grep -qx avx512; then
		PETCNN_ISA=avx512 run --separate-stderr cnn-train --train "$d/train16.npy" -o "$BATS_TEST_TMPDIR/m.npz" --epochs 1 -q
		assert_failure 1
		[[ $stderr == *"this CPU lacks avx512"* ]] || fail "$stderr"
	fi
}

@test "cnn-train: an interrupted and resumed run ends with the uninterrupted run's bytes" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	local args=(--train "$d/train.npy" --test "$d/test.npy" --model "$SMALL" --epochs 2 --lr 1e-3 -q)
	run --separate-stderr cnn-train "${args[@]}" -o "$t/full.npz"
	assert_success
	local full=$output
	# stop mid-epoch (step 27 of 40), then resume from that checkpoint
	run --separate-stderr cnn-train "${args[@]}" -o "$t/part.npz" --stop-after 27
	assert_success
	local first=$output
	run py 'z = np.load(sys.argv[1]); assert int(z["train/step"]) == 27' "$t/part.npz"
	assert_success
	run --separate-stderr cnn-train "${args[@]}" -o "$t/part.npz" --resume "$t/part.npz"
	assert_success
	cmp "$t/full.npz" "$t/part.npz"
	[ "$first"$'\n'"$output" = "$full" ]
	# momentum resumes exactly too
	run --separate-stderr cnn-train "${args[@]}" --optimizer momentum -o "$t/mf.npz"
	assert_success
	run --separate-stderr cnn-train "${args[@]}" --optimizer momentum -o "$t/mp.npz" --stop-after 13
	run --separate-stderr cnn-train "${args[@]}" --optimizer momentum -o "$t/mp.npz" --resume "$t/mp.npz"
	assert_success
	cmp "$t/mf.npz" "$t/mp.npz"
}

@test "cnn-train: SIGINT leaves a valid checkpoint and exit status 130" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	cnn-train --train "$d/train.npy" -o "$t/m.npz" --epochs 100000 --model "$SMALL" -q > "$t/out" 2> "$t/err" &
	local pid=$! rc=0
	# wait for the first epoch's checkpoint, then interrupt mid-run
	for _ in $(seq 600); do [ -e "$t/m.npz" ] && break; sleep 0.1; done
	kill -INT $pid
	wait $pid || rc=$?
	[ "$rc" -eq 130 ] || fail "exit status $rc"
	run py 'z = np.load(sys.argv[1]); assert int(z["train/step"]) >= 20; print(int(z["train/step"]))' "$t/m.npz"
	assert_success
	[ -z "$(ls "$t" | grep -v -e '^m.npz$' -e '^out$' -e '^err$')" ] || fail "leftover files: $(ls "$t")"
	# and training resumes from it
	run --separate-stderr cnn-train --train "$d/train.npy" -o "$t/m.npz" --resume "$t/m.npz" --epochs 100000 \
		--model "$SMALL" --stop-after $(( ${lines[0]} + 3 )) -q
	assert_success
}

@test "cnn-train: bad inputs are clear errors naming the file, and nothing is written" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	py 'import numpy as np
with open(sys.argv[1], "wb") as f:
    np.save(f, np.zeros((4, 16, 16, 3), np.uint8)); np.save(f, np.array([0, 1, 2, 0])); np.save(f, np.array(["a", "b"]))
with open(sys.argv[2], "wb") as f:
    np.save(f, np.zeros((4, 16, 16, 3), np.uint8)); np.save(f, np.array([0, 1, 1, 0])); np.save(f, np.array(["a", "c"]))
with open(sys.argv[3], "wb") as f:
    np.save(f, np.zeros((4, 16, 16), np.uint8)); np.save(f, np.array([0, 1, 1, 0])); np.save(f, np.array(["a", "b"]))
' "$t/badlabel.npy" "$t/otherclass.npy" "$t/gray.npy"
	run --separate-stderr cnn-train --train "$t/badlabel.npy" -o "$t/out.npz"
	assert_failure 1
	[[ $stderr == "cnn-train: $t/badlabel.npy: label 2 of image 2"* ]] || fail "$stderr"
	run --separate-stderr cnn-train --train "$d/train16.npy" --test "$t/otherclass.npy" -o "$t/out.npz"
	assert_failure 1
	[[ $stderr == *"otherclass.npy: class 0 is 'a'"* ]] || fail "$stderr"
	run --separate-stderr cnn-train --train "$t/gray.npy" -o "$t/out.npz"
	assert_failure 1
	[[ $stderr == *"gray.npy: images must be uint8 [N, H, W, 3]"* ]] || fail "$stderr"
	run --separate-stderr cnn-train --train "$d/train16.npy" --test "$d/test.npy" -o "$t/out.npz"
	assert_failure 1
	[[ $stderr == *"test.npy: images are 32x32 but"*"train16.npy has 16x16"* ]] || fail "$stderr"
	head -c 3000 "$d/train16.npy" > "$t/trunc.npy"
	run --separate-stderr cnn-train --train "$t/trunc.npy" -o "$t/out.npz"
	assert_failure 1
	[[ $stderr == "cnn-train: $t/trunc.npy"* ]] || fail "$stderr"
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/out.npz" --model "a=conv:3x3:4 b=dense:K:x"
	assert_failure 1
	[[ $stderr == *"unknown option 'x'"* ]] || fail "$stderr"
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/out.npz" --resume "$t/badlabel.npy"
	assert_failure 1
	[[ $stderr == "cnn-train: $t/badlabel.npy"* ]] || fail "$stderr"
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/out.npz" --lr abc
	assert_failure 2
	[ ! -e "$t/out.npz" ]
	[ -z "$output" ]
}

@test "cnn-train: end to end on pet-synth data at 64x64 (pet-split, pet-pack): test accuracy reaches 90%" {
	local t=$BATS_TEST_TMPDIR spec="c1=conv:3x3:16 p1=maxpool:2x2 c2=conv:3x3:32 p2=maxpool:2x2 drop:conv fc=dense:64 drop:fc out=dense:K"
	for p in pet-synth pet-split pet-pack; do
		command -v $p > /dev/null || fail "$p not built"
	done
	pet-synth -q -o "$t/mirror" -b samoyed,shiba_inu -n 80 --seed 1
	mkdir "$t/data"
	tar xzf "$t/mirror/images.tar.gz" -C "$t/data"
	tar xzf "$t/mirror/annotations.tar.gz" -C "$t/data"
	# pet-synth's quirk files (a truncated JPEG, a non-image) are skipped with a warning
	pet-split -q "$t/data" -b samoyed,shiba_inu --test 0.25 --seed 1 -o "$t/lists" 2> /dev/null
	pet-pack -q --size 64 --list "$t/lists/train.tsv" -o "$t/train.npy" 2> /dev/null
	pet-pack -q --size 64 --list "$t/lists/test.tsv" -o "$t/test.npy" 2> /dev/null
	run --separate-stderr cnn-train --train "$t/train.npy" --test "$t/test.npy" -o "$t/m.npz" --model "$spec" \
		--init he --epochs 12 --lr 1e-3 --keep-conv 0.8 --keep-fc 0.8 --seed 1 -q
	assert_success
	run py '
lines = [l.split() for l in open(sys.argv[1]).read().splitlines()]
loss = [float(v) for s, t, v in lines if t == "test_epoch/Loss"]
acc = [float(v) for s, t, v in lines if t == "test_epoch/Accuracy"]
assert len(acc) == 12, acc
assert loss[-1] < 0.5 * loss[0], ("loss did not fall", loss)
assert max(acc) >= 0.9 and acc[-1] >= 0.8, ("accuracy", acc)
print(acc)
' <(echo "$output")
	assert_success
	run --separate-stderr cnn-eval -m "$t/m.npz" "$t/test.npy"
	assert_success
	assert_line --partial "samoyed"
}

@test "cnn-train: --checkpoint-every: a background checkpoint holds its step's state exactly (killed, resumed: the uninterrupted bytes)" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	local args=(--train "$d/train.npy" --model "$SMALL" --epochs 40 --lr 1e-3 -q)
	run --separate-stderr cnn-train "${args[@]}" -o "$t/full.npz"
	assert_success
	# checkpoints every 7 steps, written by the child; killed once one exists, so what is on
	# disk can only be a background one (a killed run writes no last checkpoint)
	cnn-train "${args[@]}" -o "$t/part.npz" --checkpoint-every 7s --checkpoint-background > /dev/null &
	local pid=$!
	for _ in $(seq 3000); do [ -e "$t/part.npz" ] && break; sleep 0.02; done
	kill -KILL $pid
	wait $pid || true
	run py 'z = np.load(sys.argv[1]); s = int(z["train/step"]); assert s % 7 == 0 and 0 < s < 800, s; print(s)' "$t/part.npz"
	assert_success
	run --separate-stderr cnn-train "${args[@]}" -o "$t/part.npz" --resume "$t/part.npz"
	assert_success
	cmp "$t/full.npz" "$t/part.npz"
}

@test "cnn-train --checkpoint-background --profile: what the checkpoints cost, the staging buffer's faulting included" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	# 2 steps an epoch: background checkpoints at steps 2 and 4, the last (6) the end's
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/m.npz" --epochs 3 --batch 10 -q \
		--threads 2 --checkpoint-background --profile
	assert_success
	run py '
import re
err = open(sys.argv[1]).read()
z = np.load(sys.argv[2])
params = sum(z[k].size for k in z.files if k.startswith(("conv", "fc", "softmax")))
assert re.search(r"2 checkpoints written in the background, each on disk", err), err
m = re.search(r"the staging buffer, (\d+) MB, was faulted in over ([0-9.]+) s from the first step, "
              r"(\d+) MB of it in huge pages( \(the rest in small ones: a chunk in huge ones came at "
              r"([0-9.]+) GB/s\))?; the loop waited ([0-9.]+) s for it, faulting (\d+) MB of it on "
              r"(\d+) threads", err)
assert m, err
mb, huge_mb, waited_mb, threads = int(m[1]), int(m[3]), int(m[7]), int(m[8])
# huge pages until a chunk of them came slower than small ones would (2 GB/s)
assert huge_mb <= mb and (m[5] is None or float(m[5]) < 2), m[0]
# params, Adam m and v, each tensor in page-aligned slots, in whole 2 MB huge pages
assert 3 * params * 4 >> 20 <= mb <= (3 * params * 4 >> 20) + 2 + 3 * len(z.files) * 4096 // 2**20 + 1, (mb, params)
assert waited_mb <= mb and threads == 2, m[0]
assert re.search(r"checkpoints in the loop [0-9.]+, waits for their staging buffer [0-9.]+,", err), err
print(m[0])
' <(echo "$stderr") "$t/m.npz"
	assert_success
}

@test "cnn-train: checkpoints in the background by default where their copy fits in a quarter of the memory available, or as asked; the same bytes" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/bg.npz" --epochs 3 --batch 10 -q \
		--threads 2 --profile
	assert_success
	echo "$stderr" > "$t/bg.err"
	run --separate-stderr cnn-train --train "$d/train16.npy" -o "$t/fg.npz" --epochs 3 --batch 10 -q \
		--threads 2 --profile --checkpoint-foreground
	assert_success
	echo "$stderr" > "$t/fg.err"
	cmp "$t/bg.npz" "$t/fg.npz"
	run py '
import re
bg, fg = open(sys.argv[1]).read(), open(sys.argv[2]).read()
m = re.search(r"checkpoints in the background, the default where their staging copy \((\d+) MB\) fits "
              r"in a quarter of the memory available \((\d+) MB\)", bg)
assert m, bg
avail = int(re.search(r"MemAvailable: +(\d+) kB", open("/proc/meminfo").read())[1]) >> 10
assert 4 * int(m[1]) <= int(m[2]) <= avail + 1024, (m[0], avail)
assert re.search(r"the staging buffer, %s MB," % m[1], bg), bg
assert "2 checkpoints written in the background" in bg, bg
assert "checkpoints in the foreground (--checkpoint-foreground)" in fg, fg
assert "written in the background" not in fg and "the staging buffer," not in fg, fg
' "$t/bg.err" "$t/fg.err"
	assert_success
}

# A child of this shell's memory cgroup (v1, or v2 where the controller is delegated) that
# holds at most $1 bytes; its directory on stdout. Needs root, as the tmpfs tests do.
memcg() {
	local p dir
	if p=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup) && [ -n "$p" ] && [ -d /sys/fs/cgroup/memory ]; then
		dir=/sys/fs/cgroup/memory${p%/}/petcnn-$$-$2
		mkdir "$dir" && echo "$1" > "$dir/memory.limit_in_bytes" || return 1
	elif p=$(sed -n 's/^0:://p' /proc/self/cgroup) && grep -qw memory "/sys/fs/cgroup${p%/}/cgroup.subtree_control"; then
		dir=/sys/fs/cgroup${p%/}/petcnn-$$-$2
		mkdir "$dir" && echo "$1" > "$dir/memory.max" || return 1
	else
		return 1
	fi
	echo "$dir"
}

@test "cnn-train: under a cgroup's memory limit the default is chosen from the limit" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR cg err
	# 16x16x8 into 2048: 4.2 M parameters, a 48 MB staging copy with Adam's moments
	local model="c1=conv:3x3:8 fc=dense:2048 out=dense:K"
	for mb in 192 900; do
		cg=$(memcg $((mb << 20)) "$mb") || fail "cannot make a memory cgroup here (the test needs root)"
		run --separate-stderr bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' _ "$cg" \
			cnn-train --train "$d/train16.npy" -o "$t/m$mb.npz" --epochs 3 --batch 10 -q --threads 2 \
			--model "$model" --profile
		err=$stderr
		rmdir "$cg"
		assert_success
		echo "$err" > "$t/$mb.err"
	done
	cmp "$t/m192.npz" "$t/m900.npz"
	run py '
import re
for mb, f, how in ((192, sys.argv[1], "foreground"), (900, sys.argv[2], "background")):
    err = open(f).read()
    m = re.search(r"checkpoints in the (\w+), the default where their staging copy \((\d+) MB\) (fits in|would "
                  r"take more than) a quarter of the memory available \((\d+) MB\)", err)
    assert m, err
    stage, avail = int(m[2]), int(m[4])
    # the limit less what the run had taken when it chose, not the machine MemAvailable
    assert 46 <= stage <= 52 and avail < mb and m[1] == how, (mb, m[0])
    assert (how == "background") == ("2 checkpoints written in the background" in err), err
    # said once without --profile too, where memory made it the foreground
    note = "checkpoints in the foreground (training waits for each): their staging copy"
    assert err.count(note) == (how == "foreground"), err
' "$t/192.err" "$t/900.err"
	assert_success
}

@test "cnn-train: --checkpoint-every takes epochs, steps or minutes, and refuses anything else" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	for bad in 0 -1 1x e 1.5s 1.5e 2em '' 0m; do
		run --separate-stderr cnn-train --train "$d/train.npy" -o "$t/m.npz" --checkpoint-every "$bad"
		assert_failure 2
		[[ $stderr == *"--checkpoint-every"* ]] || fail "'$bad': $stderr"
		[ ! -e "$t/m.npz" ]
	done
	# a checkpoint every 2 epochs of 20 steps, and every 0.001 minutes: both run to the end
	for every in 2 2e 15s 0.001m; do
		run --separate-stderr cnn-train --train "$d/train.npy" -o "$t/m.npz" --model "$SMALL" --epochs 3 -q \
			--checkpoint-every "$every"
		assert_success
		run py 'z = np.load(sys.argv[1]); assert int(z["train/step"]) == 60' "$t/m.npz"
		assert_success
	done
}

@test "cnn-train: a background checkpoint that fails is the run's failure, naming the file" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	mkdir "$t/out"
	cnn-train --train "$d/train.npy" -o "$t/out/m.npz" --model "$SMALL" --epochs 100000 -q \
		--checkpoint-every 1s --checkpoint-background > /dev/null 2> "$t/err" &
	local pid=$! rc=0
	for _ in $(seq 3000); do [ -e "$t/out/m.npz" ] && break; sleep 0.02; done
	# the directory goes away (a rename: rm -rf can lose a race with a file being named in
	# it): the next writer cannot create or name its file
	mv "$t/out" "$t/gone"
	for _ in $(seq 1200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
	local alive=0
	kill -0 $pid 2>/dev/null && alive=1 && kill -KILL $pid
	wait $pid || rc=$?
	[ "$alive" = 0 ] || fail "still running"
	[ "$rc" = 1 ] || fail "exit status $rc: $(cat "$t/err")"
	grep -q "^cnn-train: $t/out/m.npz: " "$t/err" || fail "$(cat "$t/err")"
}

@test "cnn-train --augment: the same bytes for --threads 1 and 2, and interrupted and resumed; the checkpoint records the spec" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	local spec="flip,shift:3,scale:0.5-1,rotate:20,color:0.3,gray:0.2"
	# the default network (its kernels give the same bits for any thread count; SMALL's
	# small layers go to OpenBLAS, whose do not), 4 steps
	run --separate-stderr cnn-train --train "$d/train.npy" --stop-after 4 -q --augment "$spec" --threads 1 -o "$t/t1.npz"
	assert_success
	local one=$output
	run --separate-stderr cnn-train --train "$d/train.npy" --stop-after 4 -q --augment "$spec" --threads 2 -o "$t/t2.npz"
	assert_success
	cmp "$t/t1.npz" "$t/t2.npz"
	[ "$output" = "$one" ]
	# augmenting changes what is learnt
	run --separate-stderr cnn-train --train "$d/train.npy" --stop-after 4 -q --threads 2 -o "$t/plain.npz"
	assert_success
	! cmp -s "$t/t1.npz" "$t/plain.npz"
	# stopped mid-epoch (step 27 of 40), resumed without --augment: the checkpoint's spec
	local args=(--train "$d/train.npy" --test "$d/test.npy" --model "$SMALL" --epochs 2 --lr 1e-3 -q)
	run --separate-stderr cnn-train "${args[@]}" --augment "$spec" -o "$t/full.npz"
	assert_success
	local full=$output
	run --separate-stderr cnn-train "${args[@]}" --augment "$spec" -o "$t/part.npz" --stop-after 27
	assert_success
	local first=$output
	run --separate-stderr cnn-train "${args[@]}" -o "$t/part.npz" --resume "$t/part.npz"
	assert_success
	cmp "$t/full.npz" "$t/part.npz"
	[ "$first"$'\n'"$output" = "$full" ]
	run py '
z = np.load(sys.argv[1])
assert str(z["train/augment"][0]) == "flip,shift:3,scale:0.5-1,rotate:20,color:0.3,gray:0.2", z["train/augment"]
assert "train/augment" not in np.load(sys.argv[2]).files' "$t/full.npz" "$t/plain.npz"
	assert_success
}

@test "cnn-train --augment: --resume refuses another spec, or none, unless --allow-changes" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	local args=(--train "$d/train16.npy" --model "$SMALL" --epochs 3 --batch 5 --lr 1e-3 -q)
	cnn-train "${args[@]}" --augment flip,rotate:10 --stop-after 4 -o "$t/a.npz" > /dev/null
	cnn-train "${args[@]}" --stop-after 4 -o "$t/b.npz" > /dev/null
	run --separate-stderr cnn-train "${args[@]}" --resume "$t/a.npz" -o "$t/x.npz" --augment flip
	assert_failure 1
	[[ $stderr == *"a.npz: was trained with --augment 'flip,rotate:10', not 'flip'"* ]] || fail "$stderr"
	run --separate-stderr cnn-train "${args[@]}" --resume "$t/a.npz" -o "$t/x.npz" --augment none
	assert_failure 1
	[[ $stderr == *"not 'none'"* ]] || fail "$stderr"
	run --separate-stderr cnn-train "${args[@]}" --resume "$t/b.npz" -o "$t/x.npz" --augment flip
	assert_failure 1
	[[ $stderr == *"b.npz: was trained with --augment 'none', not 'flip'"* ]] || fail "$stderr"
	[ ! -e "$t/x.npz" ]
	# the same spec written otherwise is the same spec
	run --separate-stderr cnn-train "${args[@]}" --resume "$t/a.npz" -o "$t/y.npz" --augment flip:0.5,rotate:10
	assert_success
	run --separate-stderr cnn-train "${args[@]}" --resume "$t/a.npz" -o "$t/x.npz" --augment gray:1 --allow-changes
	assert_success
	[[ $stderr == *"resuming with --augment 'gray:1' (it was 'flip,rotate:10')"* ]] || fail "$stderr"
	run py 'assert str(np.load(sys.argv[1])["train/augment"][0]) == "gray:1"' "$t/x.npz"
	assert_success
}

@test "cnn-train --augment: the feature cache is off (said when --feature-cache is given), the first batch goes to TensorBoard, --profile has its row" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	local args=(--train "$d/train16.npy" --model "$SMALL" --epochs 2 --batch 5 --lr 1e-3 -q --keep-conv 1)
	cnn-train "${args[@]}" -o "$t/src.npz" > /dev/null
	run --separate-stderr cnn-train "${args[@]}" --init-from "$t/src.npz" --freeze-below fc -o "$t/c.npz"
	assert_success
	[[ $stderr == *"feature cache: the output of"* ]] || fail "without --augment it caches: $stderr"
	run --separate-stderr cnn-train "${args[@]}" --init-from "$t/src.npz" --freeze-below fc -o "$t/c.npz" --augment flip
	assert_success
	[[ $stderr != *"feature cache"* ]] || fail "$stderr"
	run --separate-stderr cnn-train "${args[@]}" --init-from "$t/src.npz" --freeze-below fc -o "$t/c.npz" --augment flip \
		--feature-cache 64 --logdir "$t/runs" --profile
	assert_success
	[[ $stderr == *"--feature-cache: off with --augment"* ]] || fail "$stderr"
	[[ $stderr == *"  augmentation "* ]] || fail "no augmentation row: $stderr"
	run --separate-stderr tfevents-cat --no-filename "$t/runs/train"
	assert_success
	# batch 5 of 16x16 in a 3x2 grid with 1-pixel gaps: 50x33, RGB
	[[ $(echo "$output" | awk -F'\t' '$3 == "image" && $4 == "augment/batch" {print $1, $5}') == "0 50x33 colorspace=3 png "*" bytes" ]] ||
		fail "$output"
}

@test "cnn-train, cnn-eval: OpenBLAS on a core without AVX2 on a CPU with it: run again on the machine's core; a core the user set stays" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR want=Haswell f
	if ! grep -qw avx2 /proc/cpuinfo; then
		# a CPU without AVX2: a narrow core is the machine's own, kept, and nothing is said
		run --separate-stderr env -u OPENBLAS_CORETYPE PETCNN_BLAS_CORE=Prescott \
			cnn-train --train "$d/train16.npy" -o "$t/a.npz" --model "$SMALL" --stop-after 2 -q
		assert_success
		[[ $stderr != *"running again"* && $stderr != *"OPENBLAS_CORETYPE"* ]] || fail "$stderr"
		env -u OPENBLAS_CORETYPE cnn-train --train "$d/train16.npy" -o "$t/b.npz" --model "$SMALL" --stop-after 2 -q
		cmp "$t/a.npz" "$t/b.npz"
		return
	fi
	for f in avx512f avx512bw avx512vl avx512dq avx512cd; do
		grep -qw "$f" /proc/cpuinfo || break
	done
	grep -qw avx512f /proc/cpuinfo && [ "$f" = avx512cd ] && grep -qw avx512cd /proc/cpuinfo && want=SkylakeX
	# PETCNN_BLAS_CORE stands in for the core OpenBLAS's detection chose (Prescott on CPU
	# models Debian's 0.3.21 does not know)
	run --separate-stderr env -u OPENBLAS_CORETYPE PETCNN_BLAS_CORE=Prescott \
		cnn-train --train - -o "$t/a.npz" --model "$SMALL" --stop-after 2 --profile -q < "$d/train16.npy"
	assert_success
	[[ $stderr == *"OpenBLAS chose its Prescott core"*"running again with OPENBLAS_CORETYPE=$want"* ]] || fail "$stderr"
	# the program ran again, from the start and with its standard input whole, on that core
	[[ $stderr == *"OpenBLAS core $want)"* ]] || fail "$stderr"
	OPENBLAS_CORETYPE=$want cnn-train --train - -o "$t/b.npz" --model "$SMALL" --stop-after 2 -q < "$d/train16.npy"
	cmp "$t/a.npz" "$t/b.npz"
	# a core the user set is kept, and nothing is said
	run --separate-stderr env OPENBLAS_CORETYPE=Prescott PETCNN_BLAS_CORE=Prescott \
		cnn-train --train "$d/train16.npy" -o "$t/c.npz" --model "$SMALL" --stop-after 2 --profile -q
	assert_success
	[[ $stderr != *"running again"* && $stderr == *"OpenBLAS core Prescott)"* ]] || fail "$stderr"
	# a core with AVX2 is OpenBLAS's to choose
	run --separate-stderr env -u OPENBLAS_CORETYPE PETCNN_BLAS_CORE=Haswell \
		cnn-train --train "$d/train16.npy" -o "$t/c.npz" --model "$SMALL" --stop-after 2 -q
	assert_success
	[[ $stderr != *"running again"* ]] || fail "$stderr"
	# cnn-eval does the same, and its report is the one it gives on OpenBLAS's own core
	run --separate-stderr env -u OPENBLAS_CORETYPE PETCNN_BLAS_CORE=Core2 cnn-eval -q -m "$t/b.npz" - < "$d/train16.npy"
	assert_success
	[[ $stderr == *"OpenBLAS chose its Core2 core"*"OPENBLAS_CORETYPE=$want"* ]] || fail "$stderr"
	[ "$output" = "$(OPENBLAS_CORETYPE=$want cnn-eval -q -m "$t/b.npz" "$d/train16.npy")" ]
}
