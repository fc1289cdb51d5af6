/* Unit tests for lib/nn/ckptsched: which steps take a checkpoint during a run (epochs, steps,
 * minutes; never the last step, the total's or --stop-after's), and a simulated run writing
 * them in the foreground and the background, the end's included, a failed write failing. */
#include "check.h"
#include "nn/ckptsched.h"
#include "util/errmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* The steps 1..total at which the rule says "due" (time stands still), as "3,6,9". */
static void due_steps(const ckptsched *s, int64_t total, int64_t spe, char *out, size_t n)
{
	size_t k = 0;

	out[0] = 0;
	for (int64_t step = 1; step <= total && k < n; step++)
		if (ckptsched_due(s, step, spe, s->saved_at))
			k += (size_t)snprintf(out + k, n - k, "%s%lld", k ? "," : "", (long long)step);
}

static void test_rule(void)
{
	ckptsched s;
	char got[256];

	/* epochs: 1e with 5 steps per epoch, 20 steps: the epochs' ends but the last */
	ckptsched_init(&s, "x", 'e', 1, 0, 20, 0, 0);
	due_steps(&s, 20, 5, got, sizeof got);
	CHECK(!strcmp(got, "5,10,15"), "1e: %s", got);
	ckptsched_init(&s, "x", 'e', 2, 0, 20, 0, 0);
	due_steps(&s, 20, 5, got, sizeof got);
	CHECK(!strcmp(got, "10"), "2e: %s", got);
	/* an epoch that is not a whole number of steps: spe steps each all the same */
	ckptsched_init(&s, "x", 'e', 1, 0, 21, 0, 0);
	due_steps(&s, 21, 7, got, sizeof got);
	CHECK(!strcmp(got, "7,14"), "1e of 7 steps: %s", got);
	/* steps: every 7th, the total's last excluded even when it is a multiple */
	ckptsched_init(&s, "x", 's', 7, 0, 21, 0, 0);
	due_steps(&s, 21, 5, got, sizeof got);
	CHECK(!strcmp(got, "7,14"), "7s: %s", got);
	ckptsched_init(&s, "x", 's', 1, 0, 4, 0, 0);
	due_steps(&s, 4, 5, got, sizeof got);
	CHECK(!strcmp(got, "1,2,3"), "1s: %s", got);
	/* --stop-after: its step is the last; one past the total changes nothing */
	ckptsched_init(&s, "x", 's', 7, 0, 100, 14, 0);
	CHECK(s.last == 14, "--stop-after 14 of 100: last %lld", (long long)s.last);
	due_steps(&s, 100, 5, got, sizeof got);
	CHECK(!strcmp(got, "7"), "7s, --stop-after 14: %s", got);
	ckptsched_init(&s, "x", 'e', 1, 0, 20, 13, 0);
	due_steps(&s, 20, 5, got, sizeof got);
	CHECK(!strcmp(got, "5,10"), "1e, --stop-after 13: %s", got);
	ckptsched_init(&s, "x", 's', 7, 0, 20, 500, 0);
	CHECK(s.last == 20, "--stop-after past the total: last %lld", (long long)s.last);
	/* minutes: since the last checkpoint started (or the run), fractions too */
	ckptsched_init(&s, "x", 'm', 0.5, 0, 100, 0, 1000);
	CHECK(!ckptsched_due(&s, 3, 5, 1029.9), "0.5m: not before 30 s");
	CHECK(ckptsched_due(&s, 3, 5, 1030), "0.5m: at 30 s");
	CHECK(ckptsched_due(&s, 4, 5, 5000), "0.5m: long after");
	CHECK(!ckptsched_due(&s, 100, 5, 5000), "0.5m: never at the last step");
	s.saved_at = 2000;
	CHECK(!ckptsched_due(&s, 50, 5, 2029), "0.5m: counted from the last checkpoint's start");
	CHECK(ckptsched_due(&s, 50, 5, 2030.5), "0.5m: 30 s after the last checkpoint's start");
}

/* A run of total steps (spe per epoch) over m, checkpointing every 3 steps to path: the
 * steps at which a checkpoint was started (the last step's at that step), then the
 * end's, as "3,6,9,10|10". */
static int run(ckptsched *s, model *m, const tensor *classes, int64_t total, char *out, size_t n,
	       char *err)
{
	ckpt_state st = { .optim = CKPT_ADAM, .seed = 1, .batch = 1, .examples = 4 };
	size_t k = 0;

	out[0] = 0;
	for (st.step = 1; st.step <= total; st.step++) {
		int64_t was = s->saved_step;

		m->params[0] = (float)st.step;
		if (ckptsched_step(s, 4, 0, m, classes, &st, err))
			return -1;
		if (s->saved_step != was)
			k += (size_t)snprintf(out + k, n - k, "%s%lld", k ? "," : "", (long long)s->saved_step);
	}
	st.step = total;
	if (ckptsched_end(s, m, classes, &st, err))
		return -1;
	snprintf(out + k, n - k, "|%lld", (long long)s->saved_step);
	return 0;
}

static void test_run(void)
{
	char dir[] = "/tmp/petcnn-ckptsched-XXXXXX", path[64], bad[96], got[128], err[ERR_MAX];
	tensor classes, cl;
	ckpt_state st;
	ckptsched s;
	model m, back;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/m.npz", dir);
	CHECK(tensor_from_strings(&classes, (const char *[]){ "a", "b" }, 2, err) == 0, "%s", err);
	CHECK(model_init(&m, "a=conv:1x1:2:linear gap", (model_size){ .h = 4, .w = 4, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0,
	      "%s", err);
	for (int bg = 0; bg < 2; bg++) {
		ckptsched_init(&s, path, 's', 3, bg, 10, 0, 0);
		CHECK(run(&s, &m, &classes, 10, got, sizeof got, err) == 0, "bg %d: %s", bg, err);
		/* the last step's is started at that step, the end only waits for it */
		CHECK(!strcmp(got, "3,6,9,10|10"), "bg %d: checkpoints at %s", bg, got);
		CHECK(s.end_lent && s.end_seconds > 0, "bg %d: the end's checkpoint was written by the thread", bg);
		/* with a staging buffer (bg), from a copy there: page-aligned, written uncopied */
		CHECK(s.writer.view.params == (bg ? s.writer.stage : m.params), "bg %d: the end's checkpoint "
		      "was written from %s", bg, s.writer.view.params == m.params ? "the model" : "elsewhere");
		/* the run waits for the end's: at the program's priority */
		CHECK(s.writer.nice == getpriority(PRIO_PROCESS, 0), "bg %d: the end's checkpoint was written "
		      "at nice %d, not the program's %d", bg, s.writer.nice, getpriority(PRIO_PROCESS, 0));
		CHECK(s.n_bg == (bg ? 3 : 0), "bg %d: %d done in the background", bg, s.n_bg);
		CHECK(!s.writer.running, "bg %d: nothing left running after the end", bg);
		CHECK(s.saved_at > 0, "bg %d: the last checkpoint's start is kept (Nm counts from it)", bg);
		CHECK(ckpt_load(path, &back, 1, 1, &cl, &st, err) == 0, "bg %d: load: %s", bg, err);
		CHECK(st.step == 10 && back.params[0] == 10.0f, "bg %d: the file holds step %lld (%g), not 10", bg,
		      (long long)st.step, back.params[0]);
		model_free(&back);
		tensor_free(&cl);
		ckptsched_free(&s);
	}
	/* a run stopped (a signal) at step 5 after step 3's background checkpoint: the end
	 * writes step 5's */
	ckptsched_init(&s, path, 's', 3, 1, 10, 0, 0);
	st = (ckpt_state){ .optim = CKPT_ADAM, .seed = 1, .batch = 1, .examples = 4 };
	for (st.step = 1; st.step <= 5; st.step++) {
		m.params[0] = (float)st.step;
		CHECK(ckptsched_step(&s, 4, st.step == 5, &m, &classes, &st, err) == 0, "step %lld: %s",
		      (long long)st.step, err);
	}
	st.step = 5;
	CHECK(s.saved_step == 3 && ckptsched_end(&s, &m, &classes, &st, err) == 0 && s.saved_step == 5,
	      "stopped at step 5: the end wrote step %lld (%s)", (long long)s.saved_step, err);
	CHECK(ckpt_load(path, &back, 1, 1, &cl, &st, err) == 0 && st.step == 5 && back.params[0] == 5.0f,
	      "stopped at step 5: the file holds step %lld", (long long)st.step);
	model_free(&back);
	tensor_free(&cl);
	ckptsched_free(&s);
	/* a background write that fails is the run's failure, named by the file */
	snprintf(bad, sizeof bad, "%s/no/such/dir/m.npz", dir);
	ckptsched_init(&s, bad, 's', 3, 1, 10, 0, 0);
	CHECK(run(&s, &m, &classes, 10, got, sizeof got, err) == -1 && strstr(err, bad),
	      "a failed background write fails the run: '%s'", err);
	ckptsched_free(&s);
	model_free(&m);
	tensor_free(&classes);
	unlink(path);
	rmdir(dir);
}

/* Pages of [p, p + n) resident in memory. */
static size_t resident(const void *p, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = (n + page - 1) / page, got = 0;
	unsigned char *v = malloc(pages);

	if (v && mincore((void *)p, n, v) == 0)
		for (size_t i = 0; i < pages; i++)
			got += v[i] & 1;
	free(v);
	return got * page;
}

/* Background checkpoints have their staging buffer mapped and faulted in by the writer
 * after the first step, so the first copy costs what every other does; not when no
 * background checkpoint will come, nor for foreground ones. */
static void test_prepare(void)
{
	char dir[] = "/tmp/petcnn-ckptsched-XXXXXX", path[64], err[ERR_MAX];
	ckpt_state st = { .optim = CKPT_ADAM, .seed = 1, .batch = 1, .examples = 4 };
	tensor classes;
	ckptsched s;
	model m;
	float *stage;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/m.npz", dir);
	CHECK(tensor_from_strings(&classes, (const char *[]){ "a", "b" }, 2, err) == 0, "%s", err);
	CHECK(model_init(&m, "a=conv:1x1:2:linear gap", (model_size){ .h = 4, .w = 4, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0,
	      "%s", err);
	ckptsched_init(&s, path, 's', 3, 1, 10, 0, 0);
	st.step = 1;
	CHECK(ckptsched_step(&s, 4, 0, &m, &classes, &st, err) == 0, "step 1: %s", err);
	CHECK(s.writer.running && !s.writer.writing, "after step 1 the writer maps the staging buffer");
	CHECK(ckpt_writer_wait(&s.writer, 1, err) == 0, "mapping: %s", err);
	/* each tensor (all smaller than a page here) in a page of its own */
	CHECK(s.writer.stage && s.writer.stage_n == 3 * (size_t)m.nparam * 1024,
	      "params, Adam's m and v, a tensor per page: %zu floats of %zu", s.writer.stage_n,
	      3 * (size_t)m.nparam * 1024);
	CHECK(s.writer.stage && resident(s.writer.stage, s.writer.stage_bytes) == s.writer.stage_bytes,
	      "the staging buffer is faulted in: %zu of %zu bytes resident",
	      s.writer.stage ? resident(s.writer.stage, s.writer.stage_bytes) : 0, s.writer.stage_bytes);
	/* a mark in the mapping's padding (past the floats): a new mapping would not have it */
	stage = s.writer.stage;
	if (stage)
		((unsigned char *)stage)[s.writer.stage_bytes - 1] = 0xa5;
	for (st.step = 2; st.step <= 3; st.step++)
		CHECK(ckptsched_step(&s, 4, 0, &m, &classes, &st, err) == 0, "step %lld: %s", (long long)st.step, err);
	CHECK(s.saved_step == 3 && s.writer.stage == stage && stage &&
	      ((unsigned char *)stage)[s.writer.stage_bytes - 1] == 0xa5, "step 3's copy goes to the buffer mapped before");
	CHECK(ckpt_writer_wait(&s.writer, 1, err) == 0 && s.n_bg == 0, "mapping is no checkpoint of its own");
	/* training goes first: the writer waits for a core it leaves idle */
	CHECK(s.writer.nice == 19, "step 3's checkpoint was written at nice %d, not 19", s.writer.nice);
	ckptsched_free(&s);
	/* reaped by the run itself, the mapping's time and the loop's waits for it are its own */
	ckptsched_init(&s, path, 's', 3, 1, 10, 0, 0);
	for (st.step = 1; st.step <= 3; st.step++)
		CHECK(ckptsched_step(&s, 4, 0, &m, &classes, &st, err) == 0, "step %lld: %s", (long long)st.step, err);
	CHECK(s.saved_step == 3 && s.prep_seconds > 0 && s.t_prep > 0, "the staging buffer's faulting took %g s, "
	      "the loop waited %g s for it", s.prep_seconds, s.t_prep);
	ckptsched_free(&s);
	/* none will come: 3 steps, every 3 (the last is the end's); every 2 epochs of 4 steps
	 * in 8; and in the foreground, 10 steps every 3 */
	for (int k = 0; k < 3; k++) {
		ckptsched_init(&s, path, k == 1 ? 'e' : 's', k == 1 ? 2 : 3, k < 2, k == 0 ? 3 : k == 1 ? 8 : 10, 0, 0);
		for (st.step = 1; st.step < s.last; st.step++)
			CHECK(ckptsched_step(&s, 4, 0, &m, &classes, &st, err) == 0, "%s", err);
		CHECK(!s.writer.running && !s.writer.stage, "case %d: no staging buffer when no background "
		      "checkpoint comes", k);
		ckptsched_free(&s);
	}
	model_free(&m);
	tensor_free(&classes);
	unlink(path);
	rmdir(dir);
}

/* The staging buffer's faulting: the writer's thread alone faults all of it in, and a run
 * that waits for it faults the rest in on its own threads beside the nice writer, each
 * chunk once. The checkpoint then copied into it holds the model. */
static void test_fault_shared(void)
{
	char dir[] = "/tmp/petcnn-ckptsched-XXXXXX", path[64], err[ERR_MAX];
	ckpt_state st = { .optim = CKPT_ADAM, .seed = 1, .batch = 1, .examples = 4, .step = 7 }, got;
	tensor classes, cl;
	ckpt_writer w;
	model m, back;
	int tries, rc;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/m.npz", dir);
	CHECK(tensor_from_strings(&classes, (const char *[]){ "a", "b" }, 2, err) == 0, "%s", err);
	/* 96 x 96 x 3 x 768 weights: 85 MB a buffer, 255 MB staged */
	CHECK(model_init(&m, "d=dense:768 out=dense:K", (model_size){ .h = 96, .w = 96, .c = 3, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0 &&
	      model_set_threads(&m, 2, err) == 0, "%s", err);
	for (size_t i = 0; i < m.nparams; i++)
		m.adam_m[i] = (float)i, m.adam_v[i] = 1.0f / (float)(i + 1);
	/* nobody waits: the writer's thread faults every chunk in */
	ckpt_writer_init(&w);
	CHECK(ckpt_writer_prepare(&w, path, &m, CKPT_ADAM, err) == 0 && w.running && !w.writing && w.stage,
	      "prepare maps the buffer and starts faulting it in: %s", err);
	CHECK(w.fault_chunks == 16, "%zu chunks of 16 MB", w.fault_chunks);
	while ((rc = ckpt_writer_wait(&w, 0, err)) == 1)
		usleep(1000);
	CHECK(rc == 0 && !w.running && w.fault_waited == 0, "the writer alone: %s, the waiter faulted in %zu bytes",
	      err, (size_t)w.fault_waited);
	CHECK(w.stage && resident(w.stage, w.stage_bytes) == w.stage_bytes, "all %zu bytes resident after the "
	      "writer: %zu", w.stage_bytes, w.stage ? resident(w.stage, w.stage_bytes) : 0);
	ckpt_writer_free(&w);
	/* waited for at once, the waiter claims chunks the writer has not (unless the writer won
	 * every chunk of the race, which a few tries rule out) */
	for (tries = 0; tries < 8; tries++) {
		ckpt_writer_init(&w);
		CHECK(ckpt_writer_prepare(&w, path, &m, CKPT_ADAM, err) == 0 && w.stage, "prepare: %s", err);
		CHECK(ckpt_writer_wait(&w, 1, err) == 0 && !w.running, "the wait: %s", err);
		CHECK(w.stage && resident(w.stage, w.stage_bytes) == w.stage_bytes, "all %zu bytes resident after "
		      "the wait: %zu", w.stage_bytes, w.stage ? resident(w.stage, w.stage_bytes) : 0);
		CHECK(w.fault_waited <= w.stage_bytes, "each chunk once: the waiter faulted in %zu of %zu bytes",
		      (size_t)w.fault_waited, w.stage_bytes);
		if (w.fault_waited > 0)
			break;
		ckpt_writer_free(&w);
	}
	CHECK(tries < 8, "in 8 tries the waiter never faulted a chunk in");
	/* at nice 19 two training threads starved it for seconds (README) */
	CHECK(w.nice == getpriority(PRIO_PROCESS, 0), "the faulting ran at nice %d, not the program's %d",
	      w.nice, getpriority(PRIO_PROCESS, 0));
	CHECK(ckpt_save_start(&w, path, &m, &classes, &st, err) == 0 && ckpt_writer_wait(&w, 1, err) == 0, "%s", err);
	CHECK(ckpt_load(path, &back, 1, 1, &cl, &got, err) == 0, "load: %s", err);
	CHECK(got.step == 7 && back.nparams == m.nparams && !memcmp(back.params, m.params, sizeof(float) * m.nparams) &&
	      !memcmp(back.adam_m, m.adam_m, sizeof(float) * m.nparams) &&
	      !memcmp(back.adam_v, m.adam_v, sizeof(float) * m.nparams), "the checkpoint holds the model and its state");
	model_free(&back);
	tensor_free(&cl);
	ckpt_writer_free(&w);
	model_free(&m);
	tensor_free(&classes);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_rule();
	test_run();
	test_prepare();
	test_fault_shared();
	return check_done("test_ckptsched");
}
