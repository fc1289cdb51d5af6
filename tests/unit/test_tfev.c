/* Unit tests for tfev: TensorFlow's default histogram buckets, NaN/Inf kept out, a file
 * written and read back record by record, truncation and CRC damage, the default graph. */
#include "check.h"
#include "tb/crc32c.h"
#include "util/errmsg.h"
#include "tb/tfev_hist.h"
#include "tb/tfev_image.h"
#include "tb/tfev_read.h"
#include "tb/tfrecord.h"
#include "tb/tfev_model.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

/* DESIGN.md's default network written out by hand, node by node, with the checkpoint's
 * scopes and names: the independent reference tfev_model_graph's output is compared with.
 * Returns the node count; a count > cap means nodes[] was too small. */
#define TFEV_DEFAULT_GRAPH_NODES 64
/* Appends a node; shape given as up to 4 sizes (0 terminates, -1 is unknown). */
static void add_node(tfev_node *nodes, size_t cap, size_t *n, const char *name, const char *op,
		     const char *in0, const char *in1, int ndim, int64_t d0, int64_t d1,
		     int64_t d2, int64_t d3)
{
	if (*n < cap) {
		tfev_node *nd = &nodes[*n];

		memset(nd, 0, sizeof *nd);
		nd->name = name;
		nd->op = op;
		nd->input[0] = in0;
		nd->input[1] = in1;
		nd->ndim = ndim;
		nd->shape[0] = d0;
		nd->shape[1] = d1;
		nd->shape[2] = d2;
		nd->shape[3] = d3;
	}
	(*n)++;
}

static size_t tfev_default_graph(tfev_node *nodes, size_t cap, int height, int width, int nclass)
{
	/* SAME padding, stride 2: ceil(x / 2). */
	int64_t h1 = height, w1 = width, h2 = (h1 + 1) / 2, w2 = (w1 + 1) / 2;
	int64_t h3 = (h2 + 1) / 2, w3 = (w2 + 1) / 2, flat = h3 * w3 * 64;
	size_t n = 0;

#define NODE(name, op, a, b, nd, d0, d1, d2, d3) \
	add_node(nodes, cap, &n, name, op, a, b, nd, d0, d1, d2, d3)
	NODE("input/images", "Placeholder", NULL, NULL, 4, -1, h1, w1, 3);
	NODE("input/labels", "Placeholder", NULL, NULL, 1, -1, 0, 0, 0);
	NODE("input/keep_conv", "Placeholder", NULL, NULL, 0, 0, 0, 0, 0);
	NODE("input/keep_fc", "Placeholder", NULL, NULL, 0, 0, 0, 0, 0);

	NODE("conv1_1/weights1_1", "VariableV2", NULL, NULL, 4, 3, 3, 3, 32);
	NODE("conv1_1/biases1_1", "VariableV2", NULL, NULL, 1, 32, 0, 0, 0);
	NODE("conv1_1/Conv2D", "Conv2D", "input/images", "conv1_1/weights1_1", 4, -1, h1, w1, 32);
	NODE("conv1_1/BiasAdd", "BiasAdd", "conv1_1/Conv2D", "conv1_1/biases1_1", 4, -1, h1, w1, 32);
	NODE("conv1_1/Relu", "Relu", "conv1_1/BiasAdd", NULL, 4, -1, h1, w1, 32);

	NODE("conv1_2/weights1_2", "VariableV2", NULL, NULL, 4, 3, 3, 32, 32);
	NODE("conv1_2/biases1_2", "VariableV2", NULL, NULL, 1, 32, 0, 0, 0);
	NODE("conv1_2/Conv2D", "Conv2D", "conv1_1/Relu", "conv1_2/weights1_2", 4, -1, h1, w1, 32);
	NODE("conv1_2/BiasAdd", "BiasAdd", "conv1_2/Conv2D", "conv1_2/biases1_2", 4, -1, h1, w1, 32);
	NODE("conv1_2/Relu", "Relu", "conv1_2/BiasAdd", NULL, 4, -1, h1, w1, 32);

	NODE("pool1/MaxPool", "MaxPool", "conv1_2/Relu", NULL, 4, -1, h2, w2, 32);
	NODE("pool1/dropout", "Dropout", "pool1/MaxPool", "input/keep_conv", 4, -1, h2, w2, 32);

	NODE("conv2_1/weights2_1", "VariableV2", NULL, NULL, 4, 3, 3, 32, 64);
	NODE("conv2_1/biases2_1", "VariableV2", NULL, NULL, 1, 64, 0, 0, 0);
	NODE("conv2_1/Conv2D", "Conv2D", "pool1/dropout", "conv2_1/weights2_1", 4, -1, h2, w2, 64);
	NODE("conv2_1/BiasAdd", "BiasAdd", "conv2_1/Conv2D", "conv2_1/biases2_1", 4, -1, h2, w2, 64);
	NODE("conv2_1/Relu", "Relu", "conv2_1/BiasAdd", NULL, 4, -1, h2, w2, 64);

	NODE("conv2_2/weights2_2", "VariableV2", NULL, NULL, 4, 3, 3, 64, 64);
	NODE("conv2_2/biases2_2", "VariableV2", NULL, NULL, 1, 64, 0, 0, 0);
	NODE("conv2_2/Conv2D", "Conv2D", "conv2_1/Relu", "conv2_2/weights2_2", 4, -1, h2, w2, 64);
	NODE("conv2_2/BiasAdd", "BiasAdd", "conv2_2/Conv2D", "conv2_2/biases2_2", 4, -1, h2, w2, 64);
	NODE("conv2_2/Relu", "Relu", "conv2_2/BiasAdd", NULL, 4, -1, h2, w2, 64);

	NODE("pool2/MaxPool", "MaxPool", "conv2_2/Relu", NULL, 4, -1, h3, w3, 64);
	NODE("pool2/dropout", "Dropout", "pool2/MaxPool", "input/keep_conv", 4, -1, h3, w3, 64);

	NODE("fc1/Reshape", "Reshape", "pool2/dropout", NULL, 2, -1, flat, 0, 0);
	NODE("fc1/weights3_1", "VariableV2", NULL, NULL, 2, flat, 512, 0, 0);
	NODE("fc1/biases3_1", "VariableV2", NULL, NULL, 1, 512, 0, 0, 0);
	NODE("fc1/MatMul", "MatMul", "fc1/Reshape", "fc1/weights3_1", 2, -1, 512, 0, 0);
	NODE("fc1/BiasAdd", "BiasAdd", "fc1/MatMul", "fc1/biases3_1", 2, -1, 512, 0, 0);
	NODE("fc1/Relu", "Relu", "fc1/BiasAdd", NULL, 2, -1, 512, 0, 0);
	NODE("fc1/dropout", "Dropout", "fc1/Relu", "input/keep_fc", 2, -1, 512, 0, 0);

	NODE("softmax/weights3_2", "VariableV2", NULL, NULL, 2, 512, nclass, 0, 0);
	NODE("softmax/biases3_2", "VariableV2", NULL, NULL, 1, nclass, 0, 0, 0);
	NODE("softmax/MatMul", "MatMul", "fc1/dropout", "softmax/weights3_2", 2, -1, nclass, 0, 0);
	NODE("softmax/logits", "BiasAdd", "softmax/MatMul", "softmax/biases3_2", 2, -1, nclass, 0, 0);
	NODE("softmax/Softmax", "Softmax", "softmax/logits", NULL, 2, -1, nclass, 0, 0);

	NODE("loss/SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits",
	     "softmax/logits", "input/labels", 1, -1, 0, 0, 0);
	NODE("loss/Mean", "Mean", "loss/SoftmaxCrossEntropyWithLogits", NULL, 0, 0, 0, 0, 0);
	NODE("accuracy/ArgMax", "ArgMax", "softmax/Softmax", NULL, 1, -1, 0, 0, 0);
	NODE("accuracy/Equal", "Equal", "accuracy/ArgMax", "input/labels", 1, -1, 0, 0, 0);
	NODE("accuracy/Mean", "Mean", "accuracy/Equal", NULL, 0, 0, 0, 0, 0);
	NODE("train/Adam", "ApplyAdam", "loss/Mean", NULL, -1, 0, 0, 0, 0);
#undef NODE
	return n;
}

static void test_limits(void)
{
	size_t n = tfev_hist_default_limits(NULL, 0);
	double *l = malloc(n * sizeof *l);
	int inc = 1, sym = 1;

	/* 1e-12 * 1.1^k < 1e20 for k = 0..773: 774 values, DBL_MAX, mirrored, and 0. */
	CHECK(n == 1551, "limit count %zu", n);
	CHECK(l && tfev_hist_default_limits(l, n) == n, "fill");
	if (!l)
		return;
	for (size_t i = 1; i < n; i++)
		inc &= l[i] > l[i - 1];
	for (size_t i = 0; i < n; i++)
		sym &= l[i] == -l[n - 1 - i];
	CHECK(inc, "strictly increasing");
	CHECK(sym, "symmetric about 0");
	CHECK(l[775] == 0 && l[776] == 1e-12 && l[n - 1] == DBL_MAX && l[0] == -DBL_MAX, "anchors");
	CHECK(l[n - 2] < 1e20 && l[n - 2] * 1.1 >= 1e20, "last finite limit just under 1e20");
	free(l);
}

static void test_hist(void)
{
	double v[1000];
	tfev_hist h;
	char err[ERR_MAX];
	size_t nl = tfev_hist_default_limits(NULL, 0);
	double *lim = malloc(nl * sizeof *lim), *want = calloc(nl, sizeof *want);
	double total = 0;
	int zero_runs = 0, mismatch = 0;

	for (int i = 0; i < 1000; i++)
		v[i] = ((i * 7919) % 1000 - 500) / 1000.0;   /* -0.5 .. 0.499, 0 included */
	v[10] = 0.0 / 0.0;
	v[11] = 1.0 / 0.0;
	v[12] = -1.0 / 0.0;
	v[13] = 1e30;
	CHECK(tfev_hist_compute(&h, v, NULL, 1000, err) == 0, "compute: %s", err);
	CHECK(h.skipped.nan == 1 && h.skipped.posinf == 1 && h.skipped.neginf == 1, "non-finite counted apart");
	CHECK(h.num == 997, "num %g", h.num);
	CHECK(h.max == 1e30 && h.min == -0.5, "min %g max %g: not poisoned by inf", h.min, h.max);
	/* Brute force: the first limit above each value, over the uncollapsed limits. */
	tfev_hist_default_limits(lim, nl);
	for (int i = 0; i < 1000; i++) {
		if (i >= 10 && i <= 12)
			continue;
		size_t b = 0;
		while (lim[b] <= v[i])
			b++;
		want[b]++;
	}
	for (size_t i = 0; i < h.nbuckets; i++) {
		total += h.count[i];
		zero_runs += i && h.count[i] == 0 && h.count[i - 1] == 0;
		size_t b = 0;
		while (lim[b] != h.limit[i])
			b++;
		mismatch += h.count[i] != want[b];
	}
	CHECK(total == h.num, "bucket counts add to num: %g vs %g", total, h.num);
	CHECK(zero_runs == 0, "empty runs collapsed (%d adjacent empty buckets)", zero_runs);
	CHECK(mismatch == 0, "%d buckets differ from brute force", mismatch);
	tfev_hist_free(&h);

	/* Every finite double has a bucket: DBL_MAX shares the last one (no limit exceeds
	 * it), -DBL_MAX is in the second, a value on a limit in the bucket above it. */
	{
		size_t k = nl / 3;
		double ext[5] = { DBL_MAX, -DBL_MAX, lim[k], nextafter(lim[k], -INFINITY), DBL_MAX };
		double lo_of[5] = { lim[nl - 2], -DBL_MAX, lim[k], lim[k - 1], lim[nl - 2] };

		CHECK(tfev_hist_compute(&h, ext, NULL, 5, err) == 0, "compute extremes: %s", err);
		CHECK(h.num == 5 && h.max == DBL_MAX && h.min == -DBL_MAX, "extremes: num %g", h.num);
		for (int i = 0; i < 5; i++) {
			double seen = 0;
			/* The bucket ending at lim[b] holds [lim[b-1], lim[b]); count those whose
			 * lower end (the previous limit, collapsed or not) is lo_of[i]. */
			for (size_t j = 0; j < h.nbuckets; j++)
				if (h.count[j] > 0 && (j ? h.limit[j - 1] : -DBL_MAX) <= lo_of[i] &&
				    lo_of[i] < h.limit[j])
					seen = h.count[j];
			CHECK(seen > 0, "extreme %d (%g) not in the bucket above %g", i, ext[i], lo_of[i]);
		}
		CHECK(h.count[h.nbuckets - 1] == 2 && h.limit[h.nbuckets - 1] == DBL_MAX,
		      "DBL_MAX twice in the last bucket (%g)", h.count[h.nbuckets - 1]);
		tfev_hist_free(&h);
		float fmax[2] = { FLT_MAX, -FLT_MAX };
		CHECK(tfev_hist_compute(&h, NULL, fmax, 2, err) == 0 && h.num == 2, "FLT_MAX");
		tfev_hist_free(&h);
	}

	/* All NaN: an empty histogram, still one bucket, min = max = 0. */
	float nanf[3] = { 0.0f / 0.0f, 0.0f / 0.0f, 0.0f / 0.0f };
	CHECK(tfev_hist_compute(&h, NULL, nanf, 3, err) == 0, "compute nan");
	CHECK(h.num == 0 && h.min == 0 && h.max == 0 && h.nbuckets == 1 && h.skipped.nan == 3, "empty histogram");
	tfev_hist_free(&h);
	free(lim);
	free(want);
}

/* Smallest valid-looking PNG header: signature and IHDR of a 5x3 RGB image. */
static const unsigned char png_head[33] = {
	0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
	0, 0, 0, 5, 0, 0, 0, 3, 8, 2, 0, 0, 0, 0, 0, 0, 0,
};

static void find_event_file(const char *dir, char *out, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	out[0] = 0;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "events.out.tfevents.", 20) && strlen(dir) + strlen(e->d_name) + 2 <= n)
			strcat(strcat(strcpy(out, dir), "/"), e->d_name);
	if (d)
		closedir(d);
}

static void test_roundtrip(const char *tmp)
{
	tfev_writer w;
	tfrecord_reader r;
	tfev_iter it;
	tfev_item item;
	char err[ERR_MAX], path[1024], cmd[3000];
	const unsigned char *p;
	size_t len;
	int64_t off;
	double vals[4] = { 1, 2, 3, 4 };
	tfev_node nodes[TFEV_DEFAULT_GRAPH_NODES];
	size_t nn = tfev_default_graph(nodes, TFEV_DEFAULT_GRAPH_NODES, 224, 224, 2);
	double t0 = (double)time(NULL);
	int kinds[16] = { 0 }, rc, nrec = 0;

	CHECK(tfev_open(&w, tmp, "train", err) == 0, "open: %s", err);
	CHECK(tfev_scalar(&w, 5, "Loss", 0.6931, err) == 0, "scalar: %s", err);
	CHECK(tfev_histogram(&w, 5, "weights1_1", vals, 4, NULL, err) == 0, "hist: %s", err);
	CHECK(tfev_text(&w, 7, "notes", "hello *world*", err) == 0, "text: %s", err);
	CHECK(tfev_image_png(&w, 50, "features", png_head, sizeof png_head, err) == 0, "image: %s", err);
	CHECK(tfev_image_png(&w, 50, "features", "GIF89a", 6, err) == -1 && strstr(err, "not a PNG"), "not a PNG: %s", err);
	CHECK(tfev_graph(&w, nodes, nn, err) == 0, "graph: %s", err);
	CHECK(tfev_scalar(&w, 1, "", 1, err) == -1, "empty tag refused");
	CHECK(tfev_close(&w, err) == 0, "close: %s", err);

	char dir[512];
	snprintf(dir, sizeof dir, "%s/train", tmp);
	find_event_file(dir, path, sizeof path);
	CHECK(path[0], "event file created in the run folder");
	CHECK(tfrecord_reader_open(&r, path, err) == 0, "reader: %s", err);
	while ((rc = tfrecord_reader_next(&r, &p, &len, &off, err)) == TFRECORD_OK) {
		nrec++;
		CHECK(tfev_iter_init(&it, p, len, err) == 0, "iter: %s", err);
		while (tfev_iter_next(&it, &item, err) == 1) {
			kinds[item.kind]++;
			CHECK(item.wall_time >= t0 - 1 && item.wall_time < t0 + 60, "wall time %f", item.wall_time);
			if (item.kind == TFEV_VERSION)
				CHECK(nrec == 1 && item.len == 13 && !memcmp(item.data, "brain.Event:2", 13), "version first");
			if (item.kind == TFEV_SCALAR)
				CHECK(item.step == 5 && item.tag_len == 4 && !memcmp(item.tag, "Loss", 4) &&
				      item.value == (double)0.6931f, "scalar back: %g", item.value);
			if (item.kind == TFEV_HISTOGRAM) {
				double total = 0;
				for (size_t i = 0; i < pb_packed_count(&item.counts); i++)
					total += pb_packed_double_at(&item.counts, i);
				CHECK(item.num == 4 && item.min == 1 && item.max == 4 && item.sum == 10 &&
				      item.sum_squares == 30 && total == 4, "histogram back");
			}
			if (item.kind == TFEV_TEXT)
				CHECK(item.step == 7 && item.len == 13 && !memcmp(item.data, "hello *world*", 13), "text back");
			if (item.kind == TFEV_IMAGE)
				CHECK(item.width == 5 && item.height == 3 && item.colorspace == 3 &&
				      item.len == sizeof png_head, "image back");
			if (item.kind == TFEV_GRAPH) {
				pb_reader g;
				tfev_node_view nv;
				size_t count = 0, found = 0;
				pb_reader_init(&g, item.data, item.len);
				while (tfev_graph_next(&g, &nv) == 1) {
					count++;
					found += nv.name_len == 18 && !memcmp(nv.name, "conv1_1/weights1_1", 18);
				}
				CHECK(count == nn && found == 1, "graph back: %zu nodes", count);
			}
		}
	}
	CHECK(rc == TFRECORD_EOF, "clean end: %s", err);
	CHECK(nrec == 6, "six records, got %d", nrec);
	CHECK(kinds[TFEV_VERSION] == 1 && kinds[TFEV_SCALAR] == 1 && kinds[TFEV_HISTOGRAM] == 1 &&
	      kinds[TFEV_TEXT] == 1 && kinds[TFEV_IMAGE] == 1 && kinds[TFEV_GRAPH] == 1, "one of each kind");
	tfrecord_reader_close(&r);

	/* Cut the last record short: the five before it still read, then "truncated". */
	snprintf(cmd, sizeof cmd, "head -c -3 '%s' > '%s/cut'", path, tmp);
	CHECK(system(cmd) == 0, "cut");
	snprintf(cmd, sizeof cmd, "%s/cut", tmp);
	CHECK(tfrecord_reader_open(&r, cmd, err) == 0, "open cut");
	nrec = 0;
	while ((rc = tfrecord_reader_next(&r, &p, &len, &off, err)) == TFRECORD_OK)
		nrec++;
	CHECK(nrec == 5 && rc == TFRECORD_FATAL && strstr(err, "truncated") && strstr(err, "cut"),
	      "truncated tail: %d records, %s", nrec, err);
	tfrecord_reader_close(&r);

	/* Flip a payload byte of the second record: it alone is skipped. */
	/* Inverted, not overwritten: a fixed byte (it was 'X') equals the wall time's byte
	 * there for 17 minutes every 3 days, and then nothing was flipped. */
	snprintf(cmd, sizeof cmd, "cp '%s' '%s/flip'", path, tmp);
	CHECK(system(cmd) == 0, "copy");
	snprintf(cmd, sizeof cmd, "%s/flip", tmp);
	FILE *f = fopen(cmd, "r+b");
	int byte = -1;

	if (f && fseek(f, 40 + 12 + 5, SEEK_SET) == 0)  /* the version record is 16 + 24 bytes */
		byte = fgetc(f);
	CHECK(byte >= 0 && fseek(f, 40 + 12 + 5, SEEK_SET) == 0 && fputc(byte ^ 0xff, f) != EOF &&
	      fclose(f) == 0, "flip");
	CHECK(tfrecord_reader_open(&r, cmd, err) == 0, "open flip");
	int ok = 0, bad = 0;
	while ((rc = tfrecord_reader_next(&r, &p, &len, &off, err)) != TFRECORD_EOF && rc != TFRECORD_FATAL) {
		ok += rc == TFRECORD_OK;
		if (rc == TFRECORD_BADDATA)
			CHECK(bad++ == 0 && strstr(err, "bad data CRC") && strstr(err, "offset 40"), "%s", err);
	}
	CHECK(ok == 5 && bad == 1 && rc == TFRECORD_EOF, "bad CRC skips one record: ok %d bad %d", ok, bad);
	tfrecord_reader_close(&r);
}

static void test_default_graph(void)
{
	tfev_node nodes[TFEV_DEFAULT_GRAPH_NODES];
	size_t n = tfev_default_graph(nodes, TFEV_DEFAULT_GRAPH_NODES, 224, 224, 2);
	int dangling = 0, scoped = 0;

	CHECK(n > 30 && n <= TFEV_DEFAULT_GRAPH_NODES, "node count %zu", n);
	CHECK(tfev_default_graph(nodes, 3, 224, 224, 2) == n, "count reported when cap is short");
	for (size_t i = 0; i < n; i++) {
		scoped += strchr(nodes[i].name, '/') != NULL;
		for (int k = 0; k < TFEV_MAX_INPUTS; k++) {
			int found = !nodes[i].input[k];
			for (size_t j = 0; j < n && !found; j++)
				found = !strcmp(nodes[i].input[k], nodes[j].name);
			dangling += !found;
		}
		if (!strcmp(nodes[i].name, "fc1/weights3_1"))
			CHECK(nodes[i].shape[0] == 56 * 56 * 64 && nodes[i].shape[1] == 512, "fc1 shape");
		if (!strcmp(nodes[i].name, "pool1/MaxPool"))
			CHECK(nodes[i].shape[1] == 112 && nodes[i].shape[3] == 32, "pool1 shape");
	}
	CHECK(dangling == 0, "%d inputs name no node", dangling);
	CHECK(scoped == (int)n, "every node in a scope");
	/* Odd sizes: SAME pooling rounds up. */
	tfev_default_graph(nodes, TFEV_DEFAULT_GRAPH_NODES, 33, 17, 5);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(nodes[i].name, "fc1/weights3_1"))
			CHECK(nodes[i].shape[0] == 9 * 5 * 64, "fc1 rows for 33x17: %lld", (long long)nodes[i].shape[0]);
}

/* Raw pixels and arrays through imgenc's PNG and the histogram, read back. */
static void test_tensors(const char *tmp)
{
	tfev_writer w;
	tfrecord_reader r;
	tfev_iter it;
	tfev_item item;
	tensor img, ints, str;
	char err[ERR_MAX], dir[512], path[1024];
	const unsigned char *p;
	size_t len;
	int64_t off, shape3[3] = { 3, 5, 3 }, shape1[1] = { 6 };
	uint8_t gray[4 * 2] = { 0, 50, 100, 150, 200, 250, 255, 1 };
	const char *s[1] = { "x" };
	int seen = 0;

	CHECK(tensor_alloc(&img, DT_F4, 3, shape3, 0, err) == 0, "alloc");
	CHECK(tensor_alloc(&ints, DT_I8, 1, shape1, 0, err) == 0, "alloc");
	CHECK(tensor_from_strings(&str, s, 1, err) == 0, "alloc");
	for (int i = 0; i < 6; i++)
		((int64_t *)ints.data)[i] = i * i;
	CHECK(tfev_open(&w, tmp, "tensors", err) == 0, "open: %s", err);
	CHECK(tfev_image(&w, 1, "gray", gray, 4, 2, 1, err) == 0, "raw image: %s", err);
	CHECK(tfev_image_tensor(&w, 2, "rgb", &img, err) == 0, "float image: %s", err);
	CHECK(tfev_histogram_tensor(&w, 3, "ints", &ints, NULL, err) == 0, "int histogram: %s", err);
	CHECK(tfev_histogram_tensor(&w, 4, "s", &str, NULL, err) == -1, "string histogram refused");
	CHECK(tfev_image_tensor(&w, 4, "i", &ints, err) == -1 && strstr(err, "not 6"), "1-d image refused: %s", err);
	CHECK(tfev_close(&w, err) == 0, "close");
	snprintf(dir, sizeof dir, "%s/tensors", tmp);
	find_event_file(dir, path, sizeof path);
	CHECK(tfrecord_reader_open(&r, path, err) == 0, "reader");
	while (tfrecord_reader_next(&r, &p, &len, &off, err) == TFRECORD_OK) {
		tfev_iter_init(&it, p, len, err);
		while (tfev_iter_next(&it, &item, err) == 1) {
			if (item.kind == TFEV_IMAGE && item.step == 1)
				seen += item.width == 4 && item.height == 2 && item.colorspace == 1 &&
					!memcmp(item.data, "\x89PNG", 4);
			if (item.kind == TFEV_IMAGE && item.step == 2)
				seen += item.width == 5 && item.height == 3 && item.colorspace == 3;
			if (item.kind == TFEV_HISTOGRAM)
				seen += item.num == 6 && item.sum == 55 && item.max == 25 && item.min == 0;
		}
	}
	CHECK(seen == 3, "images and histogram read back (%d of 3)", seen);
	tfrecord_reader_close(&r);
	tensor_free(&img);
	tensor_free(&ints);
	tensor_free(&str);
}

/* The model's graph for the default spec is byte for byte the default graph. */
static void test_model_graph(const char *tmp)
{
	tfev_writer w;
	tfrecord_reader r;
	tfev_iter it;
	tfev_item item;
	model m;
	tfev_node nodes[TFEV_DEFAULT_GRAPH_NODES];
	size_t n = tfev_default_graph(nodes, TFEV_DEFAULT_GRAPH_NODES, 40, 24, 3);
	char err[ERR_MAX], dir[512], path[1024];
	const unsigned char *p;
	unsigned char *g[3] = { 0 };
	size_t len, glen[3] = { 0 };
	int64_t off;
	int ng = 0;

	CHECK(model_init(&m, MODEL_DEFAULT_SPEC, (model_size){ .h = 40, .w = 24, .classes = 3, .max_batch = 1, .train = 0 }, err) == 0, "model: %s", err);
	CHECK(tfev_open(&w, tmp, "model", err) == 0, "open: %s", err);
	CHECK(tfev_graph(&w, nodes, n, err) == 0, "default graph: %s", err);
	CHECK(tfev_model_graph(&w, &m, err) == 0, "model graph: %s", err);
	model_free(&m);
	/* Another spec: unnamed pools, a VALID strided conv, a ReLU6 conv, no dropout, two
	 * dense layers. */
	CHECK(model_init(&m, "a=conv:5x5:8:s2:valid maxpool:2x2 b=conv:3x3:4:relu6 maxpool:2x2 d=dense:16 e=dense:K", (model_size){ .h = 40, .w = 24, .classes = 3, .max_batch = 1, .train = 0 }, err) == 0, "model 2: %s", err);
	CHECK(tfev_model_graph(&w, &m, err) == 0, "model 2 graph: %s", err);
	model_free(&m);
	CHECK(tfev_close(&w, err) == 0, "close");
	snprintf(dir, sizeof dir, "%s/model", tmp);
	find_event_file(dir, path, sizeof path);
	CHECK(tfrecord_reader_open(&r, path, err) == 0, "reader");
	while (tfrecord_reader_next(&r, &p, &len, &off, err) == TFRECORD_OK) {
		tfev_iter_init(&it, p, len, err);
		while (tfev_iter_next(&it, &item, err) == 1)
			if (item.kind == TFEV_GRAPH && ng < 3 && (g[ng] = malloc(item.len))) {
				memcpy(g[ng], item.data, item.len);
				glen[ng++] = item.len;
			}
	}
	tfrecord_reader_close(&r);
	CHECK(ng == 3 && glen[0] == glen[1] && !memcmp(g[0], g[1], glen[0]),
	      "default spec graph differs from tfev_default_graph (%zu vs %zu bytes)", glen[0], glen[1]);
	if (ng == 3) {
		pb_reader gr;
		tfev_node_view nv;
		const char *want[] = { "a/weights1_1", "a/Conv2D", "pool/MaxPool", "b/weights2_1",
				       "pool_2/MaxPool", "d/Reshape", "d/weights3_1", "e/weights3_2",
				       "e/logits", "e/Softmax", "a/Relu", "b/Relu6" };
		int found[12] = { 0 };

		pb_reader_init(&gr, g[2], glen[2]);
		while (tfev_graph_next(&gr, &nv) == 1)
			for (int k = 0; k < 12; k++)
				found[k] |= nv.name_len == strlen(want[k]) && !memcmp(nv.name, want[k], nv.name_len);
		for (int k = 0; k < 12; k++)
			CHECK(found[k], "node %s in the second model's graph", want[k]);
	}
	for (int k = 0; k < 3; k++)
		free(g[k]);
}

static void test_errors(const char *tmp)
{
	tfev_writer w;
	char err[ERR_MAX], path[512];

	snprintf(path, sizeof path, "%s/file", tmp);
	CHECK(system("true") == 0, "shell");
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
	CHECK(tfev_open(&w, path, "run", err) == -1 && strstr(err, "file"), "logdir is a file: %s", err);
	tfrecord_reader r;
	CHECK(tfrecord_reader_open(&r, tmp, err) == -1 && strstr(err, "directory"), "dir refused: %s", err);
	snprintf(path, sizeof path, "%s/absent", tmp);
	CHECK(tfrecord_reader_open(&r, path, err) == -1 && strstr(err, "absent"), "missing: %s", err);
	/* Two writers in the same second and run: two files, neither clobbered. */
	tfev_writer a, b;
	CHECK(tfev_open(&a, tmp, "same", err) == 0 && tfev_open(&b, tmp, "same", err) == 0, "two writers");
	CHECK(strcmp(a.out.path, b.out.path) != 0, "distinct names %s %s", a.out.path, b.out.path);
	tfev_close(&a, err);
	tfev_close(&b, err);
}

/* A full disk (here a file-size limit, EFBIG) mid-record: the file is cut back to its last
 * whole record, the error names the file, and every record before it reads back. */
static void test_full(const char *tmp)
{
	tfev_writer w;
	tfrecord_reader r;
	struct rlimit old, lim;
	char err[ERR_MAX], text[3000], path[512];
	const unsigned char *p;
	size_t len;
	int64_t off;
	int n = 0, nread = 0, rc, failed = 0;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	struct stat st;

	memset(text, 'x', sizeof text - 1);
	text[sizeof text - 1] = 0;
	CHECK(tfev_open(&w, tmp, "full", err) == 0, "open: %s", err);
	snprintf(path, sizeof path, "%s", tfev_path(&w));
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
	lim = old;
	lim.rlim_cur = 10000;     /* three 3 kB records fit, the fourth is torn */
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
	for (n = 0; n < 10 && !failed; n++) {
		failed = tfev_text(&w, n, "t", text, err) || tfev_flush(&w, err);
		if (failed)
			CHECK(strstr(err, path) && strstr(err, "too large"), "error names the file: %s", err);
	}
	CHECK(failed && tfev_failed(&w), "the limit is hit");
	CHECK(stat(path, &st) == 0 && st.st_size < 10000, "size %lld", (long long)st.st_size);
	CHECK(tfev_close(&w, err) == -1, "close retries and fails again");
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, prev);
	CHECK(tfrecord_reader_open(&r, path, err) == 0, "reader: %s", err);
	while ((rc = tfrecord_reader_next(&r, &p, &len, &off, err)) == TFRECORD_OK)
		nread++;
	CHECK(rc == TFRECORD_EOF, "the file ends on a whole record: %s", err);
	CHECK(nread == 4, "the version and three text records read back: %d", nread);
	tfrecord_reader_close(&r);
}

int main(void)
{
	char tmp[] = "/tmp/petcnn-tfev-XXXXXX", cmd[64];

	if (!mkdtemp(tmp))
		return 1;
	test_limits();
	test_hist();
	test_roundtrip(tmp);
	test_default_graph();
	test_tensors(tmp);
	test_model_graph(tmp);
	test_errors(tmp);
	test_full(tmp);
	snprintf(cmd, sizeof cmd, "rm -r '%s'", tmp);
	CHECK(system(cmd) == 0, "cleanup");
	return check_done("test_tfev");
}
