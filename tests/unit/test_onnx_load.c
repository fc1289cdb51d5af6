/* Unit tests for onnx_load: which loader a -m path goes to, class names from a list or a
 * file, and (with arguments, for tests/onnx.bats) an ONNX model read for --init-from:
 *   test_onnx_load finetune MODEL.onnx   every parameter taken by finetune_apply, the
 *                                        same bits as onnx_load_model's; prints its line */
#include "check.h"
#include "nn/finetune.h"
#include "onnx/onnx_load.h"
#include "util/errmsg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_dispatch(void)
{
	char dir[] = "/tmp/test_onnx_load.XXXXXX", zip[64], other[64];

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(zip, sizeof zip, "%s/model", dir);
	snprintf(other, sizeof other, "%s/other", dir);
	write_file(zip, "PK\003\004rest");
	write_file(other, "\010\007onnx");
	CHECK(model_path_is_onnx("x.onnx") == 1, "by extension");
	CHECK(model_path_is_onnx("x.ONNX") == 1, "any case");
	CHECK(model_path_is_onnx("x.npz") == 0, "checkpoint");
	CHECK(model_path_is_onnx("-") == 0, "stdin is a checkpoint stream");
	CHECK(model_path_is_onnx(zip) == 0, "a zip is a checkpoint");
	CHECK(model_path_is_onnx(other) == 1, "not a zip");
	CHECK(model_path_is_onnx("/nonexistent/model") == 0, "unreadable: the checkpoint loader says why");
	unlink(zip);
	unlink(other);
	rmdir(dir);
}

static void names_are(const tensor *t, const char *const *want, int n, const char *what)
{
	char buf[64];

	CHECK(t->dtype == DT_U && t->ndim == 1 && t->shape[0] == n, "%s: shape", what);
	for (int i = 0; i < n && t->shape[0] == n; i++) {
		tensor_get_string(t, i, buf, sizeof buf);
		CHECK(!strcmp(buf, want[i]), "%s: name %d is '%s', want '%s'", what, i, buf, want[i]);
	}
}

static void test_class_names(void)
{
	static const char *const dflt[] = { "class0", "class1", "class2" };
	static const char *const list[] = { "cat", "shiba inu", "dog" };
	char dir[] = "/tmp/test_onnx_load.XXXXXX", path[64], err[ERR_MAX];
	tensor t;

	CHECK(onnx_class_names(&t, NULL, 3, "--classes", err) == 0, "%s", err);
	names_are(&t, dflt, 3, "default");
	tensor_free(&t);
	CHECK(onnx_class_names(&t, "cat,shiba inu,dog", 3, "--classes", err) == 0, "%s", err);
	names_are(&t, list, 3, "list");
	tensor_free(&t);
	CHECK(onnx_class_names(&t, "cat,dog", 3, "--classes", err) == -1, "short list accepted");
	CHECK(strstr(err, "2 class names, the model has 3 classes") != NULL, "%s", err);
	CHECK(onnx_class_names(&t, "/nonexistent/names.txt", 3, "--classes", err) == -1, "a missing file is one name");
	CHECK(strstr(err, "/nonexistent/names.txt: no such file, nor a comma list of 3 class names") != NULL, "%s", err);
	CHECK(onnx_class_names(&t, "cat,,dog", 3, "--classes", err) == -1, "empty name accepted");
	CHECK(strstr(err, "empty class name") != NULL, "%s", err);
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/names.txt", dir);
	write_file(path, "cat\r\n  shiba inu \n\ndog\n");
	CHECK(onnx_class_names(&t, path, 3, "--classes", err) == 0, "%s", err);
	names_are(&t, list, 3, "file");
	tensor_free(&t);
	CHECK(onnx_class_names(&t, path, 4, "--classes", err) == -1, "wrong count accepted");
	CHECK(strstr(err, path) && strstr(err, "3 class names, the model has 4"), "%s", err);
	unlink(path);
	rmdir(dir);
}

/* --init-from's path against cnn-convert's: the same parameters, every one taken. */
static int finetune_check(const char *path)
{
	finetune_src src;
	model a, b;
	tensor classes;
	char err[ERR_MAX], msg[512], *spec;

	if (onnx_finetune_read(path, &src, err) || finetune_head_spec(src.spec, &spec, err)) {
		fprintf(stderr, "test_onnx_load: %s\n", err);
		return 1;
	}
	if (onnx_load_model(path, NULL, &a, 1, 0, &classes, err) ||
	    model_init(&b, spec, (model_size){ .h = a.h, .w = a.w, .c = 3, .classes = (int)src.classes,
					       .max_batch = 1, .train = 1 }, err) ||
	    finetune_apply(&b, &src, 0, path, msg, sizeof msg, err)) {
		fprintf(stderr, "test_onnx_load: %s\n", err);
		return 1;
	}
	CHECK(!src.has_norm, "an ONNX file has no normalisation");
	CHECK(a.nparams == b.nparams && !memcmp(a.params, b.params, a.nparams * sizeof(float)),
	      "--init-from's parameters differ from cnn-convert's");
	printf("%s\n", msg);
	model_free(&a);
	model_free(&b);
	tensor_free(&classes);
	free(spec);
	finetune_src_free(&src);
	return check_done("test_onnx_load");
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "finetune"))
		return finetune_check(argv[2]);
	test_dispatch();
	test_class_names();
	return check_done("test_onnx_load");
}
