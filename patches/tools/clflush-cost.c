// SPDX-License-Identifier: GPL-2.0-only
/*
 * clflush-cost: what the cache maintenance of KVM_MEM_NON_COHERENT_DMA
 * memslots costs per 4 KiB page on the CPU this runs on.
 *
 * The kernel's clflush_cache_range() is a full barrier, one CLFLUSHOPT per
 * 64-byte line (CLFLUSH where CLFLUSHOPT is missing), and a full barrier.
 * This does the same from user space over a buffer larger than the
 * last-level cache, page by page, in three states of the lines: dirty
 * (the page was just written, as when the host zeroes or fills it), clean
 * (just read) and not cached (just flushed).  It prints the median of
 * several rounds, in ns per page.
 *
 *   cc -O2 -o clflush-cost clflush-cost.c && ./clflush-cost [MiB] [rounds]
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE	4096
#define LINE	64

static int use_clflushopt;

static void flush_page(char *p)
{
	char *end = p + PAGE;

	asm volatile("mfence" ::: "memory");
	if (use_clflushopt) {
		for (; p < end; p += LINE)
			asm volatile("clflushopt %0" : "+m"(*(volatile char *)p));
	} else {
		for (; p < end; p += LINE)
			asm volatile("clflush %0" : "+m"(*(volatile char *)p));
	}
	asm volatile("mfence" ::: "memory");
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

enum state { DIRTY, CLEAN, UNCACHED };

static double round_ns(char *buf, size_t pages, enum state s)
{
	volatile uint64_t sink = 0;
	double t0;
	size_t i, j;

	for (i = 0; i < pages; i++) {
		char *p = buf + i * PAGE;

		switch (s) {
		case DIRTY:
			memset(p, (int)i, PAGE);
			break;
		case CLEAN:
			for (j = 0; j < PAGE; j += LINE)
				sink += ((volatile char *)p)[j];
			break;
		case UNCACHED:
			flush_page(p);
			break;
		}
	}
	/* Dirty and clean: only the last pages are still in the cache. */
	if (s != UNCACHED) {
		size_t keep = pages < 256 ? pages : 256;

		for (i = pages - keep; i < pages; i++)
			if (s == DIRTY)
				memset(buf + i * PAGE, (int)i, PAGE);
		t0 = now_ns();
		for (i = pages - keep; i < pages; i++)
			flush_page(buf + i * PAGE);
		return (now_ns() - t0) / keep;
	}
	t0 = now_ns();
	for (i = 0; i < pages; i++)
		flush_page(buf + i * PAGE);
	return (now_ns() - t0) / pages;
}

int main(int argc, char **argv)
{
	static const char * const names[] = { "dirty", "clean", "uncached" };
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	int rounds = argc > 2 ? atoi(argv[2]) : 15;
	unsigned int a, b, c, d;
	size_t pages = mib * 1024 * 1024 / PAGE;
	double *t = calloc(rounds, sizeof(*t));
	char *buf;
	int s, r;

	if (__get_cpuid_count(7, 0, &a, &b, &c, &d))
		use_clflushopt = !!(b & (1u << 23));
	buf = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED || !t) {
		perror("mmap");
		return 1;
	}
	madvise(buf, pages * PAGE, MADV_NOHUGEPAGE);

	printf("%s, %zu MiB buffer, %d rounds, median ns per 4 KiB page:\n",
	       use_clflushopt ? "clflushopt" : "clflush", mib, rounds);
	for (s = DIRTY; s <= UNCACHED; s++) {
		for (r = 0; r < rounds; r++)
			t[r] = round_ns(buf, pages, s);
		qsort(t, rounds, sizeof(*t), cmp);
		printf("  %-9s %8.0f ns  (min %.0f, max %.0f)\n", names[s],
		       t[rounds / 2], t[0], t[rounds - 1]);
	}
	return 0;
}
