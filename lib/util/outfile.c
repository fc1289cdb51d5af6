/* outfile: atomic output through a temporary file and rename(2).
 * The only mutable file-scope state in lib/ is here: a signal handler can reach nothing else. */
#include "util/outfile.h"

#include "util/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS 32

/* Temporary names the signal handler must unlink; a slot is live while its first byte is set. */
static char pending[SLOTS][PATH_MAX];
static volatile sig_atomic_t handlers_installed;

static void on_signal(int sig)
{
	for (int i = 0; i < SLOTS; i++)
		if (pending[i][0])
			unlink(pending[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	struct sigaction sa, old;

	if (handlers_installed)
		return;
	handlers_installed = 1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		/* Leave alone a signal the program ignores (nohup) or already handles. */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			sigaction(sigs[i], &sa, NULL);
	}
}

static int take_slot(const char *tmp)
{
	sigset_t all, old;
	int slot = -1;

	if (strlen(tmp) >= PATH_MAX)
		return -1;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < SLOTS; i++)
		if (!pending[i][0]) {
			memcpy(pending[i], tmp, strlen(tmp) + 1);
			slot = i;
			break;
		}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return slot;
}

static void drop_slot(outfile *o)
{
	sigset_t all, old;

	if (o->slot < 0)
		return;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pending[o->slot][0] = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	o->slot = -1;
}

static void release(outfile *o)
{
	free(o->path);
	free(o->tmp);
	o->path = o->tmp = NULL;
	o->fp = NULL;
}

int outfile_open(outfile *o, const char *path, char *err)
{
	const char *slash, *base;
	size_t dirlen, n;
	mode_t mask;
	int fd;

	memset(o, 0, sizeof *o);
	o->slot = -1;
	if (!path || !strcmp(path, "-")) {
		o->fp = stdout;
		return 0;
	}
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	dirlen = (size_t)(base - path);
	n = strlen(path) + 16;
	o->path = strdup(path);
	o->tmp = malloc(n);
	if (!o->path || !o->tmp) {
		release(o);
		return err_set(err, "%s: out of memory", path);
	}
	/* Hidden and beside the target, so rename stays within one file system. */
	snprintf(o->tmp, n, "%.*s.%s.XXXXXX", (int)dirlen, path, base);
	install_handlers();
	fd = mkstemp(o->tmp);
	if (fd < 0) {
		err_sys(err, "%s: cannot create", path);
		release(o);
		return -1;
	}
	o->slot = take_slot(o->tmp);
	mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	o->fp = fdopen(fd, "wb");
	if (!o->fp) {
		err_sys(err, "%s: cannot open", path);
		close(fd);
		unlink(o->tmp);
		drop_slot(o);
		release(o);
		return -1;
	}
	return 0;
}

int outfile_commit(outfile *o, char *err)
{
	int bad;

	if (!o->tmp) {
		if (fflush(o->fp) || ferror(o->fp))
			return err_sys(err, "standard output: write error");
		return 0;
	}
	bad = fflush(o->fp) != 0 || ferror(o->fp);
	if (!bad)
		bad = fsync(fileno(o->fp)) != 0 && errno != EINVAL;
	if (bad) {
		err_sys(err, "%s: write error", o->path);
		outfile_abort(o);
		return -1;
	}
	if (fclose(o->fp) != 0) {
		o->fp = NULL;
		err_sys(err, "%s: write error", o->path);
		outfile_abort(o);
		return -1;
	}
	o->fp = NULL;
	if (rename(o->tmp, o->path) != 0) {
		err_sys(err, "%s: cannot rename into place", o->path);
		outfile_abort(o);
		return -1;
	}
	drop_slot(o);
	release(o);
	return 0;
}

void outfile_abort(outfile *o)
{
	if (!o->tmp) {
		if (o->fp)
			fflush(o->fp);
		o->fp = NULL;
		return;
	}
	if (o->fp)
		fclose(o->fp);
	unlink(o->tmp);
	drop_slot(o);
	release(o);
}

int outfile_mkdirs(const char *dir, char *err)
{
	char *path = strdup(dir);

	if (!path)
		return err_set(err, "%s: out of memory", dir);
	for (char *p = path + 1;; p++) {
		char ch = *p;

		if (ch && ch != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0777) != 0 && errno != EEXIST) {
			err_sys(err, "%s: cannot create directory", path);
			free(path);
			return -1;
		}
		*p = ch;
		if (!ch)
			break;
	}
	free(path);
	return 0;
}
