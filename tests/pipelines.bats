#!/usr/bin/env bats
# pipelines/demo.mk (and so pets.mk and figures.mk) end to end with tiny settings: it runs
# offline, prints the accuracy, writes both TensorBoard runs and every figure, a second
# make has nothing to do, and a changed knob redoes only the steps that read it.
load helper

setup() {
	D=$BATS_TEST_TMPDIR/demo
	MK=(make -f "$TOP/pipelines/demo.mk" DEMO="$D" BIN="$PETCNN_BIN/" PER_BREED=40 EPOCHS=1
	    MODEL="c1=conv:3x3:4 p1=maxpool:2x2 c2=conv:3x3:4 p2=maxpool:2x2 fc=dense:8 out=dense:K"
	    FIG_LAYERS="c1 c2" FIG_FIRST=c1)
}

@test "pipelines: the demo runs offline, prints the accuracy, writes runs and figures" {
	run --separate-stderr "${MK[@]}"
	assert_success
	assert_line --regexp '^demo: accuracy [0-9.]+$'
	assert_line --partial "tensorboard --logdir $D/runs"
	# pet-fetch went through the file:// mirror that pet-synth made.
	[ -f "$D/mirror/SHA256SUMS" ] && [ -d "$D/data/images" ] && [ -f "$D/data/annotations/list.txt" ]
	for run in train test; do
		ls "$D/runs/$run"/events.out.tfevents.* > /dev/null || fail "no $run run"
		run tfevents-cat "$D/runs/$run"
		assert_success
		assert_output --partial "Loss"
		assert_output --partial "Accuracy"
	done
	for f in photo.png gray.png filters.png filters-pooled.png maxpool-in.png maxpool-out.png \
		same.png valid.png padding.txt maps-c1.png maps-c2.png evolution-conv1_2.gif \
		evolution-conv2_2.gif gradcam-right.png gradcam-wrong.png gradcam.txt weights-c1.png \
		maximize-c1.png maximize-c2.png; do
		[ -s "$D/figures/$f" ] || fail "figure $f missing"
	done
	run py 'import numpy as np
with open(sys.argv[1], "rb") as f:
    x, y, k = np.load(f), np.load(f), np.load(f)
assert x.dtype == np.uint8 and x.shape[1:] == (64, 64, 3), x.shape
assert list(k) == ["samoyed", "shiba_inu"], k
z = np.load(sys.argv[2])
assert "c1/weights1_1" in z.files, z.files' "$D/test.npy" "$D/model.npz"
	assert_success
}

@test "pipelines: a second make has nothing to do; EPOCHS retrains without refetch or repack" {
	"${MK[@]}" all > /dev/null 2>&1
	run "${MK[@]}" -q all
	assert_success
	before=$(stat -c %Y "$D/fetched" "$D/train.npy" "$D/test.npy" "$D/lists/train.tsv")
	sleep 1
	run --separate-stderr "${MK[@]}" -n EPOCHS=2 all
	assert_success
	assert_output --partial "cnn-train"
	refute_output --partial "pet-fetch"
	refute_output --partial "pet-split"
	refute_output --partial "pet-pack"
	run --separate-stderr "${MK[@]}" EPOCHS=2 all
	assert_success
	[ "$before" = "$(stat -c %Y "$D/fetched" "$D/train.npy" "$D/test.npy" "$D/lists/train.tsv")" ] ||
		fail "fetch, split or pack ran again"
	run tfevents-cat "$D/runs/test"
	assert_success
	run "${MK[@]}" -q EPOCHS=2 all
	assert_success
}

@test "pipelines: transfer.mk pretrains, fine-tunes frozen and trains from scratch, offline" {
	T=$BATS_TEST_TMPDIR/transfer
	# under make check the outer make would have this one print its directories
	run --separate-stderr env -u MAKEFLAGS -u MAKELEVEL make --no-print-directory -s -f "$TOP/pipelines/transfer.mk" TRANSFER="$T" BIN="$PETCNN_BIN/" \
		PER_BREED=20 FEW=4 PRE_EPOCHS=1 EPOCHS=2 SEEDS="1 2" SIZE=32 THREADS=1
	assert_success
	assert_line --index 0 $'seed\tfine-tuned\tseconds\tfrom scratch\tseconds'
	assert_line --regexp $'^1\t[01][.][0-9]+\t[0-9.]+\t[01][.][0-9]+\t[0-9.]+$'
	assert_line --regexp $'^2\t'
	# the fine-tuned model kept the pretrained convolutions bit for bit, its head is new
	run py 'import numpy as np
pre, ft = np.load(sys.argv[1]), np.load(sys.argv[2])
for k in ("conv1_1/weights1_1", "conv2_2/weights2_2"):
    assert np.array_equal(pre[k].view(np.uint32), ft[k].view(np.uint32)), k
assert pre["softmax/weights3_2"].shape[1] == 6 and ft["softmax/weights3_2"].shape[1] == 2
assert list(ft["train/frozen"]) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"], ft["train/frozen"]' \
		"$T/pre.npz" "$T/ft-1.npz"
	assert_success
}
