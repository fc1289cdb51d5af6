#!/usr/bin/env bats
# tensor-png decoded by Pillow: picture sizes from the documented layout, each cell's pixels
# carrying the right map or image, the index labels in their 3x5 digits, GIF frame counts
# and delays, stdin equal to a file, and bad inputs refused naming the file.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# The layout of tensor-png --help, for the checks below: cell k's top-left pixel.
LAYOUT='
import math
LABEL_H, GAP = 7, 2
def layout(n, h, w, scale=1, labels=True, cols=0, label0=0):
    cols = min(cols or math.ceil(math.sqrt(n)), n)
    rows = (n + cols - 1) // cols
    bw = max(w * scale, 4 * len(str(label0 + n - 1)) + 1 if labels else 0)
    bh = h * scale + (LABEL_H if labels else 0)
    size = (cols * bw + (cols - 1) * GAP, rows * bh + (rows - 1) * GAP)
    origin = [((k % cols) * (bw + GAP), (k // cols) * (bh + GAP) + (LABEL_H if labels else 0))
              for k in range(n)]
    return size, origin
FONT = {"0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7],
        "4": [5, 5, 7, 1, 1], "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1],
        "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7]}
def label_ok(a, x, y, text):
    """the digits of text drawn white at (x + 1, y - 6), nothing else lit in the strip"""
    strip = a[y - LABEL_H:y, x:x + 4 * len(text) + 1]
    want = np.zeros_like(strip)
    for i, d in enumerate(text):
        for r, bits in enumerate(FONT[d]):
            for b in range(3):
                if bits >> (2 - b) & 1:
                    want[1 + r, 1 + 4 * i + b] = 255
    return (strip == want).all()
'

@test "tensor-png: --help, --version, bad option" {
	check_conventions tensor-png
}

@test "tensor-png: feature maps [1, H, W, C]: one labelled gray cell per channel, each carrying its own map" {
	# map k: a ramp along x from k to k + 9 (per-map min/max scaling makes every cell the
	# same 0..255 ramp); with --range 0,20 cell k must show k + x, telling the cells apart.
	py '
h, w, C = 6, 10, 12
x = np.arange(w, dtype=np.float32)
m = np.zeros((1, h, w, C), np.float32)
for k in range(C):
    m[0, :, :, k] = k + x[None, :] + 0.5 * np.arange(h)[:, None]
np.save("maps.npy", m)'
	tensor-png maps.npy > maps.png
	tensor-png --range 0,20 -o fixed.png maps.npy
	py "$LAYOUT"'
from PIL import Image
m = np.load("maps.npy")
(size, origin) = layout(12, 6, 10)
for path, fixed in (("maps.png", False), ("fixed.png", True)):
    im = Image.open(path)
    assert im.mode == "L" and im.size == size, (path, im.mode, im.size, size)
    a = np.asarray(im)
    for k, (x0, y0) in enumerate(origin):
        cell = a[y0:y0 + 6, x0:x0 + 10].astype(float)
        v = m[0, :, :, k].astype(float)
        lo, hi = (0, 20) if fixed else (v.min(), v.max())
        want = np.clip(np.rint((v - lo) / (hi - lo) * 255), 0, 255)
        assert np.abs(cell - want).max() <= 1, (path, k, cell, want)   # rounding: 1 level
        assert label_ok(a, x0, y0, str(k)), (path, k)
print("ok")'
}

@test "tensor-png: an image batch is drawn as it is, RGB or gray; --index, --cols, --scale, --no-labels" {
	py '
r = np.random.default_rng(3)
with open("ds.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (5, 7, 9, 3), dtype=np.uint8))
    np.save(f, np.arange(5, dtype=np.int64))
    np.save(f, np.array(["a", "b"]))
np.save("gray.npy", r.integers(0, 256, (3, 4, 5, 1), dtype=np.uint8))'
	tensor-png ds.npy > batch.png
	tensor-png --index 3 --scale 3 ds.npy > one.png
	tensor-png --cols 1 --no-labels gray.npy > gray.png
	py "$LAYOUT"'
from PIL import Image
imgs = np.load("ds.npy")
a = np.asarray(Image.open("batch.png"))
size, origin = layout(5, 7, 9)
assert a.shape == (size[1], size[0], 3), (a.shape, size)
for k, (x0, y0) in enumerate(origin):
    assert (a[y0:y0 + 7, x0:x0 + 9] == imgs[k]).all(), k      # uint8: exact
    assert label_ok(a[:, :, 1], x0, y0, str(k)), k
# --index 3 --scale 3: one cell labelled 3, every pixel a 3x3 block
a = np.asarray(Image.open("one.png"))
size, origin = layout(1, 7, 9, scale=3, label0=3)
assert a.shape == (size[1], size[0], 3), a.shape
x0, y0 = origin[0]
assert (a[y0:y0 + 21, x0:x0 + 27] == imgs[3].repeat(3, 0).repeat(3, 1)).all()
assert label_ok(a[:, :, 0], x0, y0, "3")
# gray, one column, no labels: the images stacked with 2-pixel gaps
g = np.load("gray.npy")[..., 0]
a = np.asarray(Image.open("gray.png"))
assert Image.open("gray.png").mode == "L" and a.shape == (3 * 4 + 2 * 2, 5), a.shape
for k in range(3):
    assert (a[k * 6:k * 6 + 4] == g[k]).all(), k
    assert k == 2 or (a[k * 6 + 4:k * 6 + 6] == 0).all()
print("ok")'
}

@test "tensor-png: --maps draws the channels of a 3-channel array; constant maps are mid-gray, NaN black" {
	py 'm = np.zeros((2, 3, 4, 3), np.float32); m[1, :, :, 1] = np.nan; m[1, 0, 0, 1] = 5
m[1, :, :, 2] = np.arange(12).reshape(3, 4)
np.save("m.npy", m)'
	tensor-png --maps --index 1 m.npy > m.png
	py "$LAYOUT"'
from PIL import Image
a = np.asarray(Image.open("m.png"))
size, origin = layout(3, 3, 4)
assert a.shape == (size[1], size[0]), (a.shape, size)
(x0, y0), (x1, y1), (x2, y2) = origin
assert (a[y0:y0 + 3, x0:x0 + 4] == 128).all()             # constant 0
c = a[y1:y1 + 3, x1:x1 + 4]
assert c[0, 0] == 128 and (c.reshape(-1)[1:] == 0).all()  # one finite value, NaN black
c = a[y2:y2 + 3, x2:x2 + 4]
assert c[0, 0] == 0 and c[2, 3] == 255
print("ok")'
}

@test "tensor-png: --gif: one frame per selected array, alternating layers split by --every 2 --first 0|1" {
	# a snapshot stream as cnn-train writes it: per snapshot conv1_2 [1,8,8,4] then
	# conv2_2 [1,4,4,9]; five snapshots, the maps growing each time
	py 'with open("snap.npy", "wb") as f:
    for s in range(5):
        np.save(f, np.random.default_rng(s).standard_normal((1, 8, 8, 4)).astype(np.float32) * (s + 1))
        np.save(f, np.random.default_rng(9 + s).standard_normal((1, 4, 4, 9)).astype(np.float32))'
	tensor-png --gif --every 2 --first 0 --delay 20 -o a.gif snap.npy
	tensor-png --gif --every 2 --first 1 snap.npy > b.gif
	tensor-png --gif --every 4 --first 0 snap.npy > c.gif
	py "$LAYOUT"'
from PIL import Image
for path, n, h, w, c, delay in (("a.gif", 5, 8, 8, 4, 200), ("b.gif", 5, 4, 4, 9, 500),
                                ("c.gif", 3, 8, 8, 4, 500)):
    im = Image.open(path)
    size, origin = layout(c, h, w)
    assert im.size == size, (path, im.size, size)
    assert im.n_frames == n, (path, im.n_frames, n)
    assert im.info.get("duration") == delay, (path, im.info)
    assert im.info.get("loop") == 0, (path, im.info)
# every frame of a.gif is the PNG of that snapshot (gray GIF palette is exact)
im = Image.open("a.gif")
f = open("snap.npy", "rb")
for s in range(5):
    im.seek(s)
    frame = np.asarray(im.convert("L"))
    maps = np.load(f); np.load(f)
    (x0, y0) = layout(4, 8, 8)[1][2]
    v = maps[0, :, :, 2]
    want = np.rint((v - v.min()) / (v.max() - v.min()) * 255)
    assert np.abs(frame[y0:y0 + 8, x0:x0 + 8] - want).max() <= 1, s
print("ok")'
	# without --first/--every the two layers do not fit one GIF
	run --separate-stderr tensor-png --gif -o mixed.gif snap.npy
	assert_failure 1
	[[ $stderr == *"snap.npy: array 1: a "*"GIF frames must match"* ]] || fail "$stderr"
	[ ! -e mixed.gif ]
}

@test "tensor-png: stdin and file give the same bytes; PNG draws the first selected array" {
	py 'with open("s.npy", "wb") as f:
    for s in range(3):
        np.save(f, np.full((1, 5, 5, 6), s, np.float32) + np.arange(6, dtype=np.float32))'
	tensor-png s.npy > file.png
	tensor-png < s.npy > stdin.png
	cat s.npy | tensor-png - > pipe.png
	tensor-png -o out.png s.npy
	cmp file.png stdin.png
	cmp file.png pipe.png
	cmp file.png out.png
	tensor-png --range 0,10 --first 2 s.npy > third.png
	tensor-png --range 0,10 s.npy > first.png
	! cmp -s third.png first.png
	py 'f = open("s.npy", "rb"); np.load(f); np.load(f); np.save("only3.npy", np.load(f))'
	tensor-png --range 0,10 only3.npy > only3.png
	cmp third.png only3.png
}

@test "tensor-png: the tutorial's pipe: dataset | cnn-apply --gray | --conv filters | tensor-png" {
	py 'r = np.random.default_rng(5)
with open("ds.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (2, 20, 24, 3), dtype=np.uint8))
    np.save(f, np.zeros(2, np.int64)); np.save(f, np.array(["x"]))'
	cnn-apply --gray ds.npy | cnn-apply --conv "$TOP/pipelines/filters7x7.npy" | tensor-png > maps.png
	py "$LAYOUT"'
from PIL import Image
im = Image.open("maps.png")
assert im.mode == "L" and im.size == layout(4, 20, 24)[0], im.size
print("ok")'
}

@test "tensor-png: bad inputs are one clear line naming the file, exit 1, nothing written" {
	printf 'P6 not a tensor\n' > junk.npy
	run --separate-stderr tensor-png -o out.png junk.npy
	assert_failure 1
	[[ $stderr == "tensor-png: junk.npy: "* ]] || fail "$stderr"
	[ ! -e out.png ]
	run --separate-stderr tensor-png < junk.npy
	assert_failure 1
	[[ $stderr == "tensor-png: <stdin>: "* ]] || fail "$stderr"
	assert_output ''

	py 'np.save("labels.npy", np.arange(4)); np.save("v.npy", np.zeros((2, 2, 2, 2, 2), np.float32))
np.save("e.npy", np.zeros((0, 4, 4, 3), np.uint8)); np.save("m.npy", np.zeros((2, 4, 4, 3), np.uint8))'
	run --separate-stderr tensor-png -o out.png labels.npy
	assert_failure 1
	[[ $stderr == *"labels.npy: no image array to draw"* ]] || fail "$stderr"
	run --separate-stderr tensor-png -o out.png v.npy
	assert_failure 1
	[[ $stderr == *"v.npy: array 0: 5 dimensions: not images"* ]] || fail "$stderr"
	run --separate-stderr tensor-png -o out.png e.npy
	assert_failure 1
	[[ $stderr == *"e.npy: array 0: an empty array"* ]] || fail "$stderr"
	run --separate-stderr tensor-png --index 2 -o out.png m.npy
	assert_failure 1
	[[ $stderr == *"m.npy: array 0: no image 2 in a batch of 2"* ]] || fail "$stderr"
	run --separate-stderr tensor-png --first 1 -o out.png m.npy
	assert_failure 1
	[[ $stderr == *"m.npy: no image array to draw"* ]] || fail "$stderr"
	head -c 200 m.npy > short.npy
	run --separate-stderr tensor-png -o out.png short.npy
	assert_failure 1
	[[ $stderr == "tensor-png: short.npy: truncated"* ]] || fail "$stderr"
	[ ! -e out.png ]
	run --separate-stderr tensor-png missing.npy
	assert_failure 1
	[[ $stderr == *"missing.npy: cannot open: No such file"* ]] || fail "$stderr"
}

@test "tensor-png: usage errors are exit 2" {
	for args in "--range 5" "--range 3,1" "--range a,b" "--delay -1" "--every 0" "--scale 0" \
		"--cols x" "a.npy b.npy"; do
		# shellcheck disable=SC2086
		run --separate-stderr tensor-png $args
		assert_failure 2
		assert_output ''
		[[ $stderr == "tensor-png: "* ]] || fail "$args: $stderr"
	done
}

# --overlay: the cells of the layout above, RGB, and the colour bar beside the grid.
OVERLAY='
from PIL import Image
def overlay_parts(path, n, h, w, labels=True):
    """the picture as an array, each cell [h, w, 3], and the bar [rows, 8, 3]"""
    (gw, gh), origin = layout(n, h, w, labels=labels)
    im = Image.open(path)
    assert im.mode == "RGB" and im.size == (gw + 2 + 8 + 5, gh), (im.mode, im.size, gw, gh)
    a = np.asarray(im).astype(int)
    top = LABEL_H if labels else 0
    return a, [a[y:y + h, x:x + w] for x, y in origin], a[top:, gw + 2:gw + 10]
def norm(m):
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
'

@test "tensor-png: --overlay: alpha 0 is the image, alpha 1 the colormap of the normalised map, matplotlib's colours" {
	# map 0 a ramp 0..34 (the middle pixel (2, 3) is 17/34 = 0.5: entry 128), map 1
	# constant (drawn as 0: entry 0), map 2 a ramp down with a NaN (NaN counts as 0).
	py '
r = np.random.default_rng(5)
np.save("img.npy", r.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8))
m = np.zeros((3, 5, 7, 1), np.float32)
m[0, :, :, 0] = np.arange(35).reshape(5, 7)
m[1] = 2.5
m[2, :, :, 0] = -np.arange(35).reshape(5, 7)
m[2, 0, 0, 0] = np.nan
np.save("m.npy", m)'
	tensor-png --overlay img.npy --alpha 0 -o a0.png m.npy
	for c in jet viridis inferno; do
		tensor-png --overlay img.npy --alpha 1 --colormap $c -o $c.png m.npy
	done
	tensor-png --overlay img.npy -o default.png m.npy
	tensor-png --overlay img.npy --alpha 0.5 --colormap jet -o half.png m.npy
	cmp default.png half.png    # jet at 0.5 is the default
	# the published tables (matplotlib _cm_listed.py; jet from _cm.py segments): entries
	# 0, 128 and 255, i.e. t = 0, 0.5 and 1
	py "$LAYOUT$OVERLAY"'
PUB = {"viridis": [(0.267004, 0.004874, 0.329415), (0.127568, 0.566949, 0.550556),
                   (0.993248, 0.906157, 0.143936)],
       "inferno": [(0.001462, 0.000466, 0.013866), (0.735683, 0.215906, 0.330245),
                   (0.988362, 0.998364, 0.644924)],
       "jet": [(0.0, 0.0, 0.5), (0.4901960784313725, 1.0, 0.4775458570524984), (0.5, 0.0, 0.0)]}
img = np.load("img.npy").astype(int)
m = np.load("m.npy")[..., 0]
_, cells, _ = overlay_parts("a0.png", 3, 5, 7)
for k in range(3):
    assert (cells[k] == img[k]).all(), k                    # alpha 0: the image, exactly
for name, (c0, c128, c255) in PUB.items():
    a, cells, bar = overlay_parts(name + ".png", 3, 5, 7)
    b = lambda c: np.rint(np.array(c) * 255).astype(int)
    assert (cells[0][2, 3] == b(c128)).all(), (name, cells[0][2, 3], b(c128))   # 0.5
    assert (cells[0][0, 0] == b(c0)).all() and (cells[0][4, 6] == b(c255)).all(), name
    assert (cells[1] == b(c0)).all(), name                  # constant: 0
    assert (cells[2][0, 0] == b(c0)).all(), name            # NaN: 0
    assert (cells[2][0, 1] == b(c255)).all(), name          # -1: the max of map 2
    assert (bar[0] == b(c255)).all() and (bar[-1] == b(c0)).all(), name   # 1 on top
    # every pixel from matplotlib itself, when it is installed
    try:
        from matplotlib import colormaps
    except ImportError:
        continue
    cm = colormaps[name]
    for k in range(3):
        t = np.nan_to_num(norm(np.nan_to_num(m[k], nan=np.nanmin(m[k]))), nan=0)
        if k == 2:
            t[0, 0] = 0
        want = np.rint(cm(t)[..., :3] * 255).astype(int)
        assert (np.abs(cells[k] - want) <= 1).all(), (name, k)   # float32 table: 1 level
print("ok")'
	# a blend, from the image and the colormap (float32 tables: 1 level of rounding)
	py "$LAYOUT$OVERLAY"'
img = np.load("img.npy").astype(float)
_, cells, _ = overlay_parts("half.png", 3, 5, 7)
_, jet, _ = overlay_parts("jet.png", 3, 5, 7)
for k in range(3):
    want = np.rint(0.5 * img[k] + 0.5 * jet[k])
    assert (np.abs(cells[k] - want) <= 1).all(), k
print("ok")'
}

@test "tensor-png: --overlay over a dataset stream's images, --index, --range, gray images, stdin" {
	py '
r = np.random.default_rng(6)
with open("ds.npy", "wb") as f:
    np.save(f, r.integers(0, 256, (4, 6, 6, 3), dtype=np.uint8))
    np.save(f, np.arange(4, dtype=np.int64))
    np.save(f, np.array(["a", "b"]))
np.save("gray.npy", r.integers(0, 256, (4, 6, 6, 1), dtype=np.uint8))
m = r.random((4, 6, 6, 1)).astype(np.float32)
m[3, 3, 3, 0] = 0.5
np.save("m.npy", m)'
	tensor-png --overlay ds.npy --alpha 1 -o all.png m.npy
	tensor-png --overlay ds.npy --alpha 1 -o - < m.npy > stdin.png
	cmp all.png stdin.png
	tensor-png --overlay ds.npy --alpha 0 --index 3 -o three.png m.npy
	tensor-png --overlay gray.npy --alpha 0 -o gray.png m.npy
	tensor-png --overlay ds.npy --alpha 1 --range 0,1 --colormap viridis -o fixed.png m.npy
	py "$LAYOUT$OVERLAY"'
from matplotlib import colormaps
ds = np.load("ds.npy").astype(int)
g = np.load("gray.npy").astype(int)
m = np.load("m.npy")[..., 0]
a, cells, _ = overlay_parts("three.png", 1, 6, 6)
assert (cells[0] == ds[3]).all()
assert label_ok(a[..., 0], 0, LABEL_H, "3")
_, cells, _ = overlay_parts("gray.png", 4, 6, 6)
for k in range(4):
    assert (cells[k] == g[k]).all(), k          # gray images repeated in R, G and B
_, cells, _ = overlay_parts("fixed.png", 4, 6, 6)
vir = colormaps["viridis"]
assert (cells[3][3, 3] == np.rint(np.array(vir(0.5)[:3]) * 255)).all()   # 0.5 of 0..1
for k in range(4):
    assert (np.abs(cells[k] - np.rint(vir(m[k])[..., :3] * 255)) <= 1).all(), k
print("ok")'
}

@test "tensor-png: --overlay refuses maps and images that do not match, naming both" {
	py '
np.save("img.npy", np.zeros((2, 5, 7, 3), np.uint8))
np.save("f.npy", np.zeros((2, 5, 7, 3), np.float32))
np.save("m3.npy", np.zeros((3, 5, 7, 1), np.float32))
np.save("msize.npy", np.zeros((2, 4, 7, 1), np.float32))
np.save("mc.npy", np.zeros((2, 5, 7, 2), np.float32))'
	run --separate-stderr tensor-png --overlay img.npy -o out.png m3.npy
	assert_failure 1
	[[ $stderr == *"m3.npy: array 0: 3 maps of 7x5, but img.npy holds 2 images of 7x5"* ]] || fail "$stderr"
	run --separate-stderr tensor-png --overlay img.npy -o out.png msize.npy
	assert_failure 1
	[[ $stderr == *"2 maps of 7x4, but img.npy holds 2 images of 7x5"* ]] || fail "$stderr"
	run --separate-stderr tensor-png --overlay img.npy -o out.png mc.npy
	assert_failure 1
	[[ $stderr == *"mc.npy: array 0: 2 channels: maps drawn over images have one"* ]] || fail "$stderr"
	run --separate-stderr tensor-png --overlay f.npy -o out.png m3.npy
	assert_failure 1
	[[ $stderr == *"f.npy: the first array is not uint8 images"* ]] || fail "$stderr"
	run --separate-stderr tensor-png --overlay missing.npy -o out.png m3.npy
	assert_failure 1
	[[ $stderr == *"missing.npy: cannot open: No such file"* ]] || fail "$stderr"
	[ ! -e out.png ]
	for args in "--colormap jet" "--alpha 0.5" "--overlay img.npy --alpha 2" \
		"--overlay img.npy --colormap parula" "--overlay img.npy --maps"; do
		# shellcheck disable=SC2086
		run --separate-stderr tensor-png $args m3.npy
		assert_failure 2
		assert_output ''
		[[ $stderr == "tensor-png: "* ]] || fail "$args: $stderr"
	done
}
