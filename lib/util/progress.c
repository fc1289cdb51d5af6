/* progress: a one-line progress bar on stderr, only when someone is watching.
 * Redraws are rate-limited so a hot loop can call progress_update freely. */
#include "util/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double progress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_init(progress *p, const char *label, int64_t total, int bytes, enum progress_mode mode)
{
	memset(p, 0, sizeof *p);
	snprintf(p->label, sizeof p->label, "%s", label ? label : "");
	p->total = total > 0 ? total : 0;
	p->bytes = bytes;
	p->enabled = mode == PROGRESS_ON || (mode == PROGRESS_AUTO && isatty(STDERR_FILENO));
	p->t0 = progress_now();
	p->last = 0;
}

void progress_set_unit(progress *p, const char *unit)
{
	snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
}

static void fmt_amount(char *buf, size_t n, double v, int bytes)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	if (!bytes) {
		snprintf(buf, n, "%.0f", v);
		return;
	}
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void fmt_eta(char *buf, size_t n, double s)
{
	long t = (long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void draw(progress *p, const char *extra, double now)
{
	char done[32], total[32], rate[32], eta[32] = "--:--";
	double el = now - p->t0, r = el > 0 ? p->done / el : 0;
	int width = 24, fill;

	fmt_amount(done, sizeof done, (double)p->done, p->bytes);
	fmt_amount(rate, sizeof rate, r, p->bytes);
	fprintf(stderr, "\r%s ", p->label);
	if (p->total) {
		fill = (int)(width * (double)p->done / (double)p->total);
		fill = fill < 0 ? 0 : fill > width ? width : fill;
		fmt_amount(total, sizeof total, (double)p->total, p->bytes);
		if (r > 0 && p->done <= p->total)
			fmt_eta(eta, sizeof eta, (p->total - p->done) / r);
		fprintf(stderr, "[%.*s%*s] %s/%s  %s%s%s/s  ETA %s", fill,
			"########################", width - fill, "", done, total, rate,
			*p->unit ? " " : "", p->unit, eta);
	} else {
		fprintf(stderr, "%s  %s%s%s/s", done, rate, *p->unit ? " " : "", p->unit);
	}
	if (extra && *extra)
		fprintf(stderr, "  %s", extra);
	fputs("\033[K", stderr);
	fflush(stderr);
	p->last = now;
}

void progress_update(progress *p, int64_t done, const char *extra)
{
	double now;

	p->done = done;
	if (!p->enabled)
		return;
	now = progress_now();
	if (now - p->last < 0.2 && !(p->total && done >= p->total))
		return;
	draw(p, extra, now);
}

void progress_end(progress *p)
{
	if (!p->enabled || p->last == 0)
		return;
	draw(p, NULL, progress_now());
	fputc('\n', stderr);
	p->last = 0;
}
