#!/usr/bin/env bats
# Hostile inputs: values at the edge of a type, files that are not files, empty streams,
# a disk that fills up. Each must be a clear error or a correct result, never a crash.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

teardown() {
	! mountpoint -q "$BATS_TEST_TMPDIR/mnt" || umount "$BATS_TEST_TMPDIR/mnt"
}

@test "tfevents-write: a histogram of +-DBL_MAX (line or .npy) puts them in the outer buckets" {
	echo '1 h hist 1.7976931348623157e308 -1.7976931348623157e308 1' > in.txt
	py 'np.save(sys.argv[1], np.array([np.finfo(np.float64).max, -np.finfo(np.float64).max, 1.0]))' big.npy
	echo '2 h hist big.npy' >> in.txt
	run --separate-stderr tfevents-write --logdir runs < in.txt
	assert_success
	run --separate-stderr tfevents-cat runs
	assert_success
	[ "$(echo "$output" | grep -c $'\thistogram\t')" = 2 ] || fail "$output"
	# The last bucket ends at DBL_MAX and holds it; -DBL_MAX is in the one below -1e20*0.99.
	echo "$output" | grep $'\thistogram\t' | while read -r line; do
		[[ $line == *"num=3 min=-1.79769313e+308 max=1.79769313e+308 "* ]] || fail "$line"
		[[ $line == *" -9.92077562e+19:1 "* ]] || fail "-DBL_MAX not in the first bucket: $line"
		[[ $line == *" 1.79769313e+308:1" ]] || fail "DBL_MAX not in the last bucket: $line"
	done
}

@test "tfevents-write: a file named on a line must be a regular file: /dev/zero, a FIFO refused at once" {
	mkfifo fifo
	ln -s fifo fifo.npy
	for line in '1 i image /dev/zero' '1 i image fifo' '1 h hist fifo.npy'; do
		echo "$line" > in.txt
		# No writer ever opens the FIFO: a reader that waited would hang until the timeout.
		run --separate-stderr timeout 20 tfevents-write --logdir runs < in.txt
		assert_failure 1
		[[ $stderr == "tfevents-write: line 1: "*": not a regular file" ]] || fail "'$line': $stderr"
	done
}

@test "tfevents-write: a file over the 1 GiB cap is refused before it is read" {
	truncate -s 1100M big.png
	echo '1 i image big.png' > in.txt
	run --separate-stderr timeout 20 tfevents-write --logdir runs < in.txt
	assert_failure 1
	[[ $stderr == *"big.png: larger than 1073741824 bytes"* ]] || fail "$stderr"
}

# Lines of 3 kB text until the writer fails; then the file must end on a whole record.
full_disk_check() {
	local dir=$1
	assert_failure 1
	[[ $stderr == "tfevents-write: $dir/events.out.tfevents."*": write: $2"* ]] || fail "$stderr"
	f=$(ls "$dir"/events.out.tfevents.*)
	"$PY" "$TOP/tests/tfrecord.py" "$f" recs || fail "torn record left in $f"
	run --separate-stderr tfevents-cat "$f"
	assert_success
	[ "$(echo "$output" | grep -c $'\ttext\t')" -ge 2 ] || fail "records before the failure lost: $output"
}

@test "tfevents-write: past a file-size limit the event file is cut back to its last whole record" {
	x=$(printf '%03000d' 0)
	for i in $(seq 1 40); do echo "$i t text $x"; done > in.txt
	# 16 kB: a few records fit, one is torn by the limit (EFBIG, SIGXFSZ ignored).
	run --separate-stderr bash -c 'ulimit -f 16; exec tfevents-write --logdir runs < in.txt'
	full_disk_check runs "File too large"
}

@test "tfevents-write: on a full file system the event file is cut back to its last whole record" {
	[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
	mkdir mnt
	mount -t tmpfs -o size=64k tmpfs mnt || skip "cannot mount a tmpfs here"
	x=$(printf '%03000d' 0)
	for i in $(seq 1 100); do echo "$i t text $x"; done > in.txt
	run --separate-stderr tfevents-write --logdir mnt < in.txt
	cp mnt/events.out.tfevents.* . 2>/dev/null
	umount mnt
	mv events.out.tfevents.* mnt/
	full_disk_check mnt "No space left on device"
}
