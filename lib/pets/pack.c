/* pack: the decode/resize pipeline behind pet-pack. See pack.h.
 * Workers take the next index under a mutex, but never more than `window` ahead of the
 * index the caller is waiting to emit; each index owns slot i % window until emitted. */
#include "pets/pack.h"

#include "util/errmsg.h"
#include "img/imgdec.h"

#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

/* One decoding thread's state, kept from image to image: the file's bytes and the resize */
struct packer {
	const pack_opts *o;
	const char *path;
	unsigned char *file;
	size_t cap;
	resize_stream rs;
	uint8_t *out;
};

static void packer_init(struct packer *p, const pack_opts *o)
{
	memset(p, 0, sizeof *p);
	p->o = o;
	resize_stream_init(&p->rs);
}

static void packer_free(struct packer *p)
{
	free(p->file);
	resize_stream_free(&p->rs);
}

/* the decoder's rows go straight into the resize */
static int sink_begin(void *ctx, int w, int h, char *err)
{
	struct packer *p = ctx;
	const pack_opts *o = p->o;
	resize_plan plan;

	resize_plan_fit(&plan, w, h, o->w, o->h, o->fit);
	if (o->fit == RESIZE_PAD)
		memset(p->out, 0, (size_t)o->w * o->h * 3);
	if (resize_stream_start(&p->rs, w, h, plan.box, p->out + ((size_t)plan.dy * o->w + plan.dx) * 3,
				(size_t)o->w * 3, plan.dw, plan.dh, err) < 0) {
		char why[ERR_MAX];  /* resize's messages do not know the file */
		memcpy(why, err, ERR_MAX);
		return err_set(err, "%s: %s", p->path, why);
	}
	return 0;
}

static uint8_t *sink_room(void *ctx, int *max, size_t *stride)
{
	return resize_stream_room(&((struct packer *)ctx)->rs, max, stride);
}

static void sink_push(void *ctx, int n)
{
	resize_stream_push(&((struct packer *)ctx)->rs, n);
}

static int packer_one(struct packer *p, const char *path, uint8_t *out, char *err)
{
	const pack_opts *o = p->o;
	imgdec_hint hint = { o->full_decode ? IMGDEC_FULL : o->fit == RESIZE_PAD ? IMGDEC_INSIDE : IMGDEC_COVER,
			     o->w, o->h, o->max_pixels };
	imgdec_sink sink = { p, sink_begin, sink_room, sink_push };
	struct stat st;
	size_t len;

	p->path = path;
	p->out = out;
	/* a FIFO (or device) named .jpg would block the read for ever: only files are images */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return err_set(err, "%s: not a regular file", path);
	if (imgdec_read(path, &p->file, &p->cap, &len, err) < 0)
		return -1;
	return imgdec_mem_sink(p->file, len, path, &hint, &sink, err);
}

int pack_one(const char *path, const pack_opts *o, uint8_t *out, char *err)
{
	struct packer p;
	int r;

	packer_init(&p, o);
	r = packer_one(&p, path, out, err);
	packer_free(&p);
	return r;
}

struct slot {
	uint8_t *pix;
	int done, ok;
	char msg[ERR_MAX];
};

struct pipe {
	const char *const *paths;
	const pack_opts *o;
	size_t n, window, next_take, next_emit;
	int stop;
	struct slot *slots;
	pthread_mutex_t mu;
	pthread_cond_t ready, space;
};

static void *worker(void *arg)
{
	struct pipe *p = arg;
	struct packer k;

	packer_init(&k, p->o);
	for (;;) {
		size_t i;
		struct slot *s;
		pthread_mutex_lock(&p->mu);
		while (!p->stop && p->next_take < p->n && p->next_take >= p->next_emit + p->window)
			pthread_cond_wait(&p->space, &p->mu);
		if (p->stop || p->next_take >= p->n) {
			pthread_mutex_unlock(&p->mu);
			packer_free(&k);
			return NULL;
		}
		i = p->next_take++;
		pthread_mutex_unlock(&p->mu);
		s = &p->slots[i % p->window];
		s->ok = packer_one(&k, p->paths[i], s->pix, s->msg) == 0;
		pthread_mutex_lock(&p->mu);
		s->done = 1;
		pthread_cond_broadcast(&p->ready);
		pthread_mutex_unlock(&p->mu);
	}
}

static int run_inline(const char *const *paths, size_t n, const pack_opts *o, pack_emit emit,
		      void *ctx, uint8_t *buf, char *err)
{
	char msg[ERR_MAX];
	struct packer k;
	int r = 0;

	packer_init(&k, o);
	for (size_t i = 0; i < n && r == 0; i++) {
		int ok = packer_one(&k, paths[i], buf, msg) == 0;
		r = emit(ctx, i, ok ? buf : NULL, msg, err);
	}
	packer_free(&k);
	return r < 0 ? -1 : 0;
}

int pack_run(const char *const *paths, size_t n, const pack_opts *o, pack_emit emit, void *ctx,
	     char *err)
{
	size_t bytes = (size_t)o->w * o->h * 3;
	struct pipe p;
	pthread_t *th;
	int started = 0, r = 0;

	if (o->w <= 0 || o->h <= 0 || o->threads <= 0)
		return err_set(err, "pack: bad size %dx%d or thread count %d", o->w, o->h, o->threads);
	memset(&p, 0, sizeof p);
	p.paths = paths;
	p.o = o;
	p.n = n;
	p.window = o->threads == 1 ? 1 : (size_t)o->threads * 4;
	p.slots = calloc(p.window, sizeof *p.slots);
	th = calloc((size_t)o->threads, sizeof *th);
	if (!p.slots || !th)
		goto oom;
	for (size_t i = 0; i < p.window; i++)
		if (!(p.slots[i].pix = malloc(bytes)))
			goto oom;
	if (o->threads == 1) {
		r = run_inline(paths, n, o, emit, ctx, p.slots[0].pix, err);
		goto out;
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.ready, NULL);
	pthread_cond_init(&p.space, NULL);
	for (; started < o->threads; started++)
		if (pthread_create(&th[started], NULL, worker, &p) != 0)
			break;
	if (!started) {
		r = err_set(err, "pack: cannot start a thread");
	} else {
		for (size_t i = 0; i < n; i++) {
			struct slot *s = &p.slots[i % p.window];
			pthread_mutex_lock(&p.mu);
			while (!s->done)
				pthread_cond_wait(&p.ready, &p.mu);
			pthread_mutex_unlock(&p.mu);
			r = emit(ctx, i, s->ok ? s->pix : NULL, s->msg, err);
			pthread_mutex_lock(&p.mu);
			s->done = 0;
			p.next_emit++;
			if (r < 0)
				p.stop = 1;
			pthread_cond_broadcast(&p.space);
			pthread_mutex_unlock(&p.mu);
			if (r < 0)
				break;
		}
	}
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_cond_destroy(&p.ready);
	pthread_cond_destroy(&p.space);
	pthread_mutex_destroy(&p.mu);
	goto out;
oom:
	r = err_set(err, "pack: out of memory for %zu images of %dx%d", p.window, o->w, o->h);
out:
	for (size_t i = 0; p.slots && i < p.window; i++)
		free(p.slots[i].pix);
	free(p.slots);
	free(th);
	return r;
}
