/* mem: faulting memory in ahead of its first use, aligned zeroed buffers (mem.h). */
#include "util/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void mem_fault(void *p, size_t bytes)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + bytes) / page * page;

	if (hi <= lo)
		return;
#ifdef MADV_POPULATE_WRITE
	if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	for (volatile unsigned char *q = (unsigned char *)lo; (uintptr_t)q < hi; q += page)
		*q = *q;
}

/* The block calloc gave is kept in the pointer-sized bytes just before the aligned ones. */
void *mem_calloc64(size_t n, size_t size)
{
	unsigned char *raw, *p;

	if ((size && n > (SIZE_MAX - 64 - sizeof raw) / size) || !(raw = calloc(n * size + 64 + sizeof raw, 1)))
		return NULL;
	p = (unsigned char *)(((uintptr_t)raw + sizeof raw + 63) & ~(uintptr_t)63);
	memcpy(p - sizeof raw, &raw, sizeof raw);
	return p;
}

void mem_free64(void *p)
{
	void *raw;

	if (!p)
		return;
	memcpy(&raw, (unsigned char *)p - sizeof raw, sizeof raw);
	free(raw);
}

/* The number after key in file (key "" : the file's first number); 0: none. */
static unsigned long long read_num(const char *file, const char *key)
{
	char line[256];
	unsigned long long v = 0;
	size_t k = strlen(key);
	FILE *f = fopen(file, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, k) && sscanf(line + k, "%llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* A cgroup's headroom (limit less usage) from the files named after its path, or
 * SIZE_MAX where it sets no limit ("max" reads as no number). */
static size_t cgroup_room(const char *dir, const char *limit, const char *usage)
{
	char a[512], b[512];
	unsigned long long lim, use;

	if (snprintf(a, sizeof a, "%s/%s", dir, limit) >= (int)sizeof a ||
	    snprintf(b, sizeof b, "%s/%s", dir, usage) >= (int)sizeof b || !(lim = read_num(a, "")))
		return SIZE_MAX;
	use = read_num(b, "");
	return lim <= use ? 0 : lim - use > SIZE_MAX ? SIZE_MAX : (size_t)(lim - use);
}

size_t mem_available(void)
{
	unsigned long long kb = read_num("/proc/meminfo", "MemAvailable:");
	size_t room = kb && kb < SIZE_MAX / 1024 ? (size_t)kb * 1024 : 0, c;
	char line[512], dir[600];
	FILE *f = fopen("/proc/self/cgroup", "r");

	while (f && fgets(line, sizeof line, f)) {
		char *path = strchr(line, ':'), *nl = strchr(line, '\n');

		if (nl)
			*nl = 0;
		if (!path)
			continue;
		/* v2's single hierarchy is "0::/path", v1's memory controller "N:memory:/path" */
		if (!strncmp(line, "0::", 3))
			snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", line + 3),
			c = cgroup_room(dir, "memory.max", "memory.current");
		else if (!strncmp(path, ":memory:", 8))
			snprintf(dir, sizeof dir, "/sys/fs/cgroup/memory%s", path + 8),
			c = cgroup_room(dir, "memory.limit_in_bytes", "memory.usage_in_bytes");
		else
			continue;
		if (c != SIZE_MAX && (!room || c < room))
			room = c;
	}
	if (f)
		fclose(f);
	return room;
}
