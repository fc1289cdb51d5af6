#!/usr/bin/env bats
# pipelines/figures.mk on a tiny numpy-made WORK folder: every figure made and decodable,
# the shapes in padding.txt as TensorFlow computes them, nothing to do on a second run,
# and a changed knob redoing only what reads it.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	mkdir w
	py 'r = np.random.default_rng(4)
with open("w/test.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (3, 21, 18, 3), dtype=np.uint8))
    np.save(f, np.array([0, 1, 0], np.int64)); np.save(f, np.array(["a", "b"]))'
	cnn-train -q --train w/test.npy -o w/model.npz --epochs 1 --batch 3 \
		--model "c1=conv:3x3:4 p1=maxpool:2x2 c2=conv:3x3:6 out=dense:K" >/dev/null
	# a snapshot stream of three snapshots, two layers each, as cnn-train --snapshots writes
	for i in 1 2 3; do
		cnn-apply -q --layer c1 -m w/model.npz --index 0 w/test.npy
		cnn-apply -q --layer c2 -m w/model.npz --index 0 w/test.npy
	done > w/snapshots.npy
	MK=(make -s -f "$TOP/pipelines/figures.mk" WORK=w FIG_LAYERS="c1 c2" FIG_FIRST=c1 BIN="$PETCNN_BIN/")
}

@test "figures.mk: every figure, padding shapes as TensorFlow's, nothing to redo after" {
	run "${MK[@]}"
	assert_success
	for f in photo gray filters filters-pooled maxpool-in maxpool-out same valid maps-c1 maps-c2 \
		gradcam-right gradcam-wrong weights-c1 maximize-c1 maximize-c2; do
		[ -s "w/figures/$f.png" ] || fail "no $f.png"
	done
	py 'from PIL import Image
sizes = {f: Image.open("w/figures/%s" % f).size for f in
         ("photo.png", "maxpool-in.png", "maxpool-out.png")}
assert sizes == {"photo.png": (18, 28), "maxpool-in.png": (96, 96),
                 "maxpool-out.png": (48, 48)}, sizes
for name, frames in (("evolution-conv1_2.gif", 3), ("evolution-conv2_2.gif", 3)):
    im = Image.open("w/figures/" + name)
    assert im.n_frames == frames, (name, im.n_frames)
# 21x18: SAME keeps ceil(in / s), VALID ceil((in - 6) / s); max-pool 3 stride 2
want = """input (the gray photo)         [1,21,18,1]
conv 7x7 stride 1 SAME         [1,21,18,4]
conv 7x7 stride 1 VALID        [1,15,12,4]
conv 7x7 stride 2 SAME         [1,11,9,4]
conv 7x7 stride 2 VALID        [1,8,6,4]
maxpool 3x3 stride 2 SAME      [1,11,9,1]
maxpool 3x3 stride 2 VALID     [1,10,8,1]
"""
got = open("w/figures/padding.txt").read()
assert got == want, got'
	run "${MK[@]}" -q
	assert_success
	# another photo: the photo figures are redone, the max-pool example is not
	# (outputs are renamed into place, so a remade file is a new inode)
	before=$(stat -c '%i %y' w/figures/maxpool-in.png w/figures/photo.png)
	run "${MK[@]}" FIG_IMAGE=2
	assert_success
	after=$(stat -c '%i %y' w/figures/maxpool-in.png w/figures/photo.png)
	[ "$(head -n 1 <<< "$before")" = "$(head -n 1 <<< "$after")" ]
	[ "$(tail -n 1 <<< "$before")" != "$(tail -n 1 <<< "$after")" ]
}
