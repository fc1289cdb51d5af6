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

@test "cnn-eval: the lean forward (large layers a few images at a time) gives the same predictions in less memory" {
	local t=$BATS_TEST_TMPDIR
	# the seed's network at 64x64: conv1_1's and conv1_2's outputs are 512 KB an image, so
	# 40 images run through them 15 at a time and conv1_1's output is never whole
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 40 64 1 "$t/d.npy"
	cnn-train --train "$t/d.npy" -o "$t/m.npz" --stop-after 1 -q > /dev/null
	/usr/bin/time -f 'peak %M' -o "$t/lean" cnn-eval --batch 40 -m "$t/m.npz" -p "$t/lean.tsv" "$t/d.npy" > /dev/null
	PETCNN_LEAN=0 /usr/bin/time -f 'peak %M' -o "$t/whole" cnn-eval --batch 40 -m "$t/m.npz" -p "$t/whole.tsv" \
		"$t/d.npy" > /dev/null
	[ "$(wc -l < "$t/lean.tsv")" -eq 41 ]
	cmp "$t/lean.tsv" "$t/whole.tsv"
	local lean whole
	lean=$(awk '/^peak/ { print $2 }' "$t/lean")
	whole=$(awk '/^peak/ { print $2 }' "$t/whole")
	# conv1_1's 40 images (20 MB) against a buffer of 15 (7.5 MB)
	(( whole - lean > 8000 )) || fail "peak RSS $lean KB lean against $whole KB whole"
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

# The ProjectorConfig message of TensorBoard's projector_config.proto, built here so that
# protobuf's own text-format parser (strict: an unknown field or a bad value is an error)
# reads our config without TensorBoard installed.
PROJECTOR_PROTO='
from google.protobuf import descriptor_pb2, descriptor_pool, text_format
try:
    from google.protobuf.message_factory import GetMessageClass
except ImportError:
    from google.protobuf import message_factory
    GetMessageClass = lambda d: message_factory.MessageFactory().GetPrototype(d)
F = descriptor_pb2.FieldDescriptorProto
fd = descriptor_pb2.FileDescriptorProto(name="projector_config.proto", package="tensorboard.projector", syntax="proto3")
def msg(name, fields):
    m = fd.message_type.add(name=name)
    for fname, num, typ, rep, tname in fields:
        f = m.field.add(name=fname, number=num, type=typ,
                        label=F.LABEL_REPEATED if rep else F.LABEL_OPTIONAL)
        if tname:
            f.type_name = tname
msg("SpriteMetadata", [("image_path", 1, F.TYPE_STRING, 0, None),
                       ("single_image_dim", 2, F.TYPE_UINT32, 1, None)])
msg("EmbeddingInfo", [("tensor_name", 1, F.TYPE_STRING, 0, None), ("metadata_path", 2, F.TYPE_STRING, 0, None),
                      ("bookmarks_path", 3, F.TYPE_STRING, 0, None), ("tensor_shape", 4, F.TYPE_UINT32, 1, None),
                      ("sprite", 5, F.TYPE_MESSAGE, 0, ".tensorboard.projector.SpriteMetadata"),
                      ("tensor_path", 6, F.TYPE_STRING, 0, None)])
msg("ProjectorConfig", [("model_checkpoint_path", 1, F.TYPE_STRING, 0, None),
                        ("embeddings", 2, F.TYPE_MESSAGE, 1, ".tensorboard.projector.EmbeddingInfo"),
                        ("model_checkpoint_dir", 3, F.TYPE_STRING, 0, None)])
pool = descriptor_pool.DescriptorPool()
pool.Add(fd)
ProjectorConfig = GetMessageClass(pool.FindMessageTypeByName("tensorboard.projector.ProjectorConfig"))
'

@test "cnn-eval: --projector writes TensorBoard's four files: vectors equal the layer the head reads, in PyTorch and cnn-apply" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" --batch 8 -p "$t/pred.tsv" --projector "$t/runs/emb" "$d/test.npy"
	assert_success
	run --separate-stderr cnn-eval -m "$d/m.npz" -p "$t/pred2.tsv" "$d/test.npy"
	assert_success
	cmp "$t/pred.tsv" "$t/pred2.tsv"     # the projector changes nothing else
	cnn-apply --layer fc -m "$d/m.npz" -o "$t/fc.npy" "$d/test.npy"
	# the PyTorch twin of the model up to fc (float64): TF SAME 3x3 convolutions (pad 1),
	# 2x2 max-pools of even sizes, ReLUs, fc on the flattened NHWC maps; dropout is off
	run py "$PROJECTOR_PROTO"'
import csv, math, torch, torch.nn.functional as F
from PIL import Image
t, data, model = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = ProjectorConfig()
text_format.Parse(open(t + "/runs/emb/projector_config.pbtxt").read(), cfg)
assert len(cfg.embeddings) == 1, cfg
e = cfg.embeddings[0]
assert (e.tensor_name, e.tensor_path, e.metadata_path) == ("fc", "tensors.tsv", "metadata.tsv"), e
assert list(e.tensor_shape) == [37, 32], e.tensor_shape
assert e.sprite.image_path == "sprite.png" and list(e.sprite.single_image_dim) == [24, 24], e.sprite
rows = [l.rstrip("\n").split("\t") for l in open(t + "/runs/emb/tensors.tsv")]
assert len(rows) == 37 and all(len(r) == 32 for r in rows), (len(rows), {len(r) for r in rows})
got = np.array(rows, dtype=np.float64)
f = open(data, "rb"); img = np.load(f); lab = np.load(f); cls = list(np.load(f))
z = np.load(model)
x = torch.from_numpy(img.astype(np.float64) / 255).permute(0, 3, 1, 2)
def conv(x, n):
    w = torch.from_numpy(z[n + "/weights" + {"c1": "1_1", "c2": "2_1"}[n]].astype(np.float64)).permute(3, 2, 0, 1)
    b = torch.from_numpy(z[n + "/biases" + {"c1": "1_1", "c2": "2_1"}[n]].astype(np.float64))
    return F.relu(F.conv2d(x, w, b, padding=1))
h = F.max_pool2d(conv(F.max_pool2d(conv(x, "c1"), 2), "c2"), 2)
h = h.permute(0, 2, 3, 1).reshape(37, -1)
want = F.relu(h @ torch.from_numpy(z["fc/weights3_1"].astype(np.float64)) +
              torch.from_numpy(z["fc/biases3_1"].astype(np.float64))).numpy()
tol = 1e-5 * max(1, np.abs(want).max())     # float32 sums of a few hundred products
assert np.abs(got - want).max() <= tol, np.abs(got - want).max()
fc = np.load(t + "/fc.npy")
assert fc.shape == (37, 1, 1, 32), fc.shape
assert np.abs(got - fc.reshape(37, 32)).max() <= tol, np.abs(got - fc.reshape(37, 32)).max()
# metadata: one row per image, in order, as --predictions says
meta = list(csv.reader(open(t + "/runs/emb/metadata.tsv"), delimiter="\t"))
pred = list(csv.reader(open(t + "/pred.tsv"), delimiter="\t"))[1:]
assert meta[0] == ["true", "predicted", "correct"] and len(meta) == 38, meta[:2]
for m, p in zip(meta[1:], pred):
    y, q = int(p[1]), int(p[2])
    assert m == [cls[y], cls[q], "yes" if y == q else "no"], (m, p)
# the sprite: ceil(sqrt(37)) = 7 a side, 24x24 images as they are, black after the 37th
s = np.asarray(Image.open(t + "/runs/emb/sprite.png").convert("RGB"))
assert s.shape == (7 * 24, 7 * 24, 3), s.shape
for i in range(49):
    cell = s[i // 7 * 24:(i // 7 + 1) * 24, i % 7 * 24:(i % 7 + 1) * 24]
    assert (cell == (img[i] if i < 37 else 0)).all(), i
print("ok")' "$t" "$d/test.npy" "$d/m.npz"
	assert_success
	assert_output ok
}

@test "cnn-eval: --projector on unlabelled images, large images in 64-pixel thumbnails, and a folder it cannot make" {
	local d=$BATS_FILE_TMPDIR t=$BATS_TEST_TMPDIR
	run --separate-stderr cnn-eval -m "$d/m.npz" --projector "$t/unl" "$d/unl.npy"
	assert_success
	py '
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1] + "/unl/metadata.tsv")]
f = open(sys.argv[2], "rb"); np.load(f); lab = np.load(f); cls = list(np.load(f))
assert rows[0] == ["true", "predicted", "correct"] and len(rows) == 38, rows[:2]
assert (lab < 0).sum() > 0
for r, y in zip(rows[1:], lab):
    assert r[1] in cls, r
    assert r == (["-", r[1], "-"] if y < 0 else [cls[y], r[1], "yes" if cls[y] == r[1] else "no"]), (r, y)
' "$t" "$d/unl.npy"
	# 5 images of 80x100 (the default spec, untrained: only the shapes matter here):
	# thumbnails 64x51 (the aspect kept), a 3x3 grid of them
	"$PY" "$BATS_TEST_DIRNAME/nn-shapes.py" 5 80 1 "$t/big.npy"
	py '
f = open(sys.argv[1], "rb"); img = np.load(f)[:, :, :, :]; lab = np.load(f); cls = np.load(f)
img = np.concatenate([img, img[:, :, :20]], axis=2)     # 80 high, 100 wide
with open(sys.argv[1], "wb") as f:
    np.save(f, np.ascontiguousarray(img)); np.save(f, lab); np.save(f, cls)' "$t/big.npy"
	cnn-train --train "$t/big.npy" -o "$t/big.npz" --model "c=conv:3x3:4 p=maxpool:4x4 out=dense:K" --stop-after 1 -q > /dev/null
	run --separate-stderr cnn-eval -m "$t/big.npz" --projector "$t/big" "$t/big.npy"
	assert_success
	py "$PROJECTOR_PROTO"'
from PIL import Image
cfg = ProjectorConfig()
text_format.Parse(open(sys.argv[1] + "/big/projector_config.pbtxt").read(), cfg)
e = cfg.embeddings[0]
assert e.tensor_name == "p" and list(e.tensor_shape) == [5, 20 * 25 * 4], e
assert list(e.sprite.single_image_dim) == [64, 51], e.sprite
s = Image.open(sys.argv[1] + "/big/sprite.png")
assert s.size == (3 * 64, 3 * 51), s.size
f = open(sys.argv[2], "rb"); img = np.load(f)
thumb = np.asarray(Image.fromarray(img[4]).resize((64, 51), Image.BILINEAR)).astype(int)
cell = np.asarray(s.convert("RGB"))[51:102, 64:128].astype(int)
assert np.abs(cell - thumb).max() <= 2, np.abs(cell - thumb).max()   # Pillow-like resize
print("ok")' "$t" "$t/big.npy"
	touch "$t/file"
	run --separate-stderr cnn-eval -m "$d/m.npz" --projector "$t/file/emb" "$d/test.npy"
	assert_failure 1
	assert_output ''
	[[ $stderr == "cnn-eval: "*"file"* ]] || fail "$stderr"
}
