#!/usr/bin/env bats
# cnn-train and cnn-eval under Open MPI's mpirun: the same results as one process (up to
# float summation order), the same parameters on every rank, rank 0 alone writing, clear
# errors for differing data, a killed rank ending the job, resume with another N.

load helper

SMALL="c1=conv:3x3:8 p1=maxpool:2x2 c2=conv:3x3:16 p2=maxpool:2x2 drop:conv fc=dense:32 drop:fc out=dense:K"
# Max relative difference of any parameter tensor to one process's (max|a-b| / max|b|)
# after 3 epochs at --lr 1e-2: measured 2.3e-6 at -np 2, 2.1e-6 at -np 3 over TCP, 2.3e-6
# resumed from -np 2 on -np 3 (float32 sums in another order).
TOL=1e-5

setup_file() {
	local py=${PETCNN_PYTHON:-/usr/bin/python3} d=$BATS_FILE_TMPDIR
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 40 16 1 "$d/train.npy"
	"$py" "$BATS_TEST_DIRNAME/nn-shapes.py" 23 16 2 "$d/test.npy"
	# one process's run: what every mpirun run is compared with
	cnn-train --train "$d/train.npy" --test "$d/test.npy" -o "$d/one.npz" --model "$SMALL" --init he \
		--lr 1e-2 --epochs 3 --batch 7 --threads 1 -q > "$d/one.txt"
}

setup() {
	# scripts/setup installs openmpi-bin: a missing mpirun is a broken setup, not a pass
	command -v mpirun > /dev/null || fail "mpirun is missing (Debian: openmpi-bin; scripts/setup installs it)"
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	# no MPI traffic leaves the machine, and no warning about a missing InfiniBand
	export OMPI_MCA_btl_base_warn_component_unused=0
}

# Open MPI's own allocations outlive MPI_Finalize, in libmpi and in components it dlopens
# (frames no suppression can name), and LeakSanitizer reports them under make asan: leaks
# are checked by every other test, and here only outside mpirun.
mpirun() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" command mpirun "$@"
}

# mpi N [mpirun options --] program args...: N ranks on this machine.
mpi() {
	local n=$1
	shift
	mpirun --oversubscribe -np "$n" "$@"
}

# close A.npz B.npz: every parameter within TOL (relative to the tensor's largest value).
close() {
	py '
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
keys = [k for k in b.files if b[k].dtype == np.float32 and not k.startswith("adam/")]
assert keys and sorted(keys) == sorted(k for k in a.files if a[k].dtype == np.float32 and not k.startswith("adam/"))
worst = max(np.abs(a[k].astype(np.float64) - b[k]).max() / np.abs(b[k]).max() for k in keys)
print("max relative difference %.3g" % worst)
assert worst <= float(sys.argv[3]), worst
assert int(a["train/step"]) == int(b["train/step"])
' "$1" "$2" "$TOL"
}

# train N [mpirun options]: 3 epochs on N ranks into $BATS_TEST_TMPDIR/N.npz, checked.
train() {
	local n=$1 d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	shift
	PETCNN_DIST_SHA=1 run --separate-stderr mpirun --oversubscribe -np "$n" "$@" cnn-train \
		--train "$d/train.npy" --test "$d/test.npy" -o "$t/$n.npz" --model "$SMALL" --init he \
		--lr 1e-2 --epochs 3 --batch 7 --threads 1 -q
	assert_success
	# rank 0 alone writes the metrics: the same lines as one process's, values close
	py '
a = [l.split() for l in sys.argv[1].splitlines()]
b = [l.split() for l in open(sys.argv[2]).read().splitlines()]
assert [x[:2] for x in a] == [x[:2] for x in b], "other metric lines"
for x, y in zip(a, b):
    assert abs(float(x[2]) - float(y[2])) <= 1e-4 * max(1, abs(float(y[2]))), (x, y)
' "$output" "$d/one.txt"
	# every rank ends with the same parameters and Adam moments
	local shas
	shas=$(grep -o 'rank [0-9]* of [0-9]*: parameters and optimiser state SHA-256 [0-9a-f]*' <<< "$stderr")
	[ "$(wc -l <<< "$shas")" -eq "$n" ] || fail "not every rank reported: $stderr"
	[ "$(awk '{print $NF}' <<< "$shas" | sort -u | wc -l)" -eq 1 ] || fail "ranks differ: $shas"
	run close "$t/$n.npz" "$d/one.npz"
	echo "# -np $n $*: $output" >&3
	assert_success
}

@test "mpi: without mpirun no MPI; mpirun -np 1 gives one process's bytes" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	PETCNN_DIST_SHA=1 run --separate-stderr cnn-train --train "$d/train.npy" -o "$t/a.npz" --model "$SMALL" \
		--init he --lr 1e-2 --epochs 1 --batch 7 --threads 1 -q
	assert_success
	[[ $stderr == *"rank 0 of 1:"* ]] || fail "$stderr"
	# the shared path (unfused Adam, the batch's share of dropout) with all rows on one rank
	run mpi 1 cnn-train --train "$d/train.npy" -o "$t/b.npz" --model "$SMALL" --init he --lr 1e-2 \
		--epochs 1 --batch 7 --threads 1 -q
	assert_success
	cmp "$t/a.npz" "$t/b.npz"
}

@test "mpi: -np 2 trains as one process does, the same parameters on both ranks" {
	train 2
}

@test "mpi: -np 3 over TCP (the path between machines) trains as one process does" {
	train 3 --mca btl tcp,self
}

@test "mpi: a batch smaller than the ranks (a rank with no rows) still trains as one process" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	cnn-train --train "$d/train.npy" -o "$t/one.npz" --model "$SMALL" --init he --lr 1e-2 --epochs 1 \
		--batch 2 --threads 1 -q > /dev/null
	run --separate-stderr mpi 3 cnn-train --train "$d/train.npy" -o "$t/three.npz" --model "$SMALL" --init he \
		--lr 1e-2 --epochs 1 --batch 2 --threads 1 -q
	assert_success
	run close "$t/three.npz" "$t/one.npz"
	assert_success
}

@test "mpi: cnn-eval -np 3 prints one process's report" {
	local d=$BATS_FILE_TMPDIR
	run --separate-stderr cnn-eval -m "$d/one.npz" "$d/test.npy"
	assert_success
	local want=$output
	run --separate-stderr mpi 3 cnn-eval -m "$d/one.npz" --batch 4 "$d/test.npy"
	assert_success
	[ "$output" = "$want" ] || fail "$(diff <(echo "$want") <(echo "$output"))"
	run --separate-stderr mpi 2 cnn-eval -m "$d/one.npz" -p "$BATS_TEST_TMPDIR/p.tsv" "$d/test.npy"
	assert_failure
	[[ $stderr == *"--predictions and --projector want every image in one process"* ]] || fail "$stderr"
}

@test "mpi: a rank reading other data is a clear error before training" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 40 16 9 "$t/other.npy"
	run --separate-stderr mpirun --oversubscribe -np 1 cnn-train --train "$d/train.npy" -o "$t/m.npz" -q \
		--model "$SMALL" : -np 1 cnn-train --train "$t/other.npy" -o "$t/m.npz" -q --model "$SMALL"
	assert_failure
	[[ $stderr == *"differs on rank 1"*"every rank must read the same data"* ]] || fail "$stderr"
	[ ! -e "$t/m.npz" ]
}

@test "mpi: a killed rank ends the job non-zero within 30 s, naming it; the checkpoint stays" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR pid child one= start
	# mpirun itself in the background (not the function above, whose pid would be a shell's)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" command mpirun --oversubscribe -np 2 \
		cnn-train --train "$d/train.npy" -o "$t/m.npz" --model "$SMALL" \
		--epochs 100000 --batch 7 --threads 1 -q --checkpoint-every 20s > /dev/null 2> "$t/err" &
	pid=$!
	for _ in $(seq 600); do [ -e "$t/m.npz" ] && break; sleep 0.1; done
	[ -e "$t/m.npz" ] || fail "no checkpoint: $(cat "$t/err")"
	# rank 1: the child of this mpirun whose environment says so
	for child in $(pgrep -P "$pid"); do
		tr '\0' '\n' < "/proc/$child/environ" | grep -qx OMPI_COMM_WORLD_RANK=1 && one=$child
	done
	[ -n "$one" ] || fail "no rank 1 among the children of mpirun $pid: $(pgrep -a -P "$pid")"
	kill -9 "$one"
	start=$SECONDS
	# not `run wait`: run's subshell has no children to wait for
	status=0
	wait "$pid" || status=$?
	[ "$status" -ne 0 ] || fail "mpirun exited 0"
	[ $((SECONDS - start)) -le 30 ] || fail "took $((SECONDS - start)) s"
	grep -q 'process rank 1 .*exited on signal 9' "$t/err" || fail "$(cat "$t/err")"
	run --separate-stderr cnn-eval -m "$t/m.npz" "$d/test.npy"
	assert_success
}

@test "mpi: --resume on another number of ranks continues the run" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr mpi 2 cnn-train --train "$d/train.npy" --test "$d/test.npy" -o "$t/m.npz" \
		--model "$SMALL" --init he --lr 1e-2 --epochs 3 --batch 7 --threads 1 -q --stop-after 8
	assert_success
	run --separate-stderr mpi 3 cnn-train --train "$d/train.npy" --test "$d/test.npy" -o "$t/m.npz" \
		--resume "$t/m.npz" --epochs 3 --batch 7 --threads 1 -q
	assert_success
	run close "$t/m.npz" "$d/one.npz"
	echo "# resumed -np 2 -> 3: $output" >&3
	assert_success
}
