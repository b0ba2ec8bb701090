// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kvmnc-copy-bench: the cache-maintenance engine (libkvmnc/cacheops.c) and
 * the range lookup (libkvmnc/rangeset.c) against memcpy, side by side in
 * one run, repetitions interleaved, min and median of each.
 *
 *   sizes   GB/s of memcpy, the read-side copy, the write-side copy and the
 *           flush alone, 4 KiB to 256 MiB (--max 1G for 1 GiB), with both
 *           buffers out of the caches before each call ("cold": the
 *           migration case) and in them ("warm")
 *   4k      ns per 4 KiB copy including the range lookup, 0/10/1000 ranges
 *   lines   ns per line of each cache instruction this CPU has (--lines)
 *   variants the alternatives the engine's defaults were chosen against
 *           (--variants)
 *
 * Ends with key=value lines. It measures the engine directly; once the
 * public helpers use it, they are what to point this at.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cacheops.h"
#include "internal.h"
#include "rangeset.h"

#define MAXREPS 1024
#define MIB	(1024.0 * 1024.0)

static int reps = 7;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stat {
	double t[MAXREPS];
	int n;
};

static void add(struct stat *s, double t)
{
	if (s->n < MAXREPS)
		s->t[s->n++] = t;
}

static double smin(struct stat *s)
{
	qsort(s->t, (size_t)s->n, sizeof(double), cmp_double);
	return s->t[0];
}

static double smed(struct stat *s)
{
	qsort(s->t, (size_t)s->n, sizeof(double), cmp_double);
	return s->n % 2 ? s->t[s->n / 2] : (s->t[s->n / 2 - 1] + s->t[s->n / 2]) / 2;
}

static char *buf_new(size_t n)
{
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "kvmnc-copy-bench: mmap %zu bytes: %s\n", n, strerror(errno));
		exit(2);
	}
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (char)(i >> 12);
	return p;
}

static void die_on(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "kvmnc-copy-bench: %s: %s\n", what, strerror(-r));
		exit(2);
	}
}

static volatile char sink;

/* Preparation, not timed: out of the caches, or in them (dst dirty). */
static void make_cold(char *p, size_t n)
{
	die_on(kvmnc_cache_flush(p, n), "flush");
}

static char touch(const char *s, size_t n)
{
	char x = 0;

	for (size_t i = 0; i < n; i += 64)
		x ^= s[i];
	sink = x;
	return x;
}

static void make_warm(const char *s, char *d, size_t n)
{
	memset(d, touch(s, n) | 1, n);
}

/*
 * The CPUID seam with leaf 7's CLFLUSHOPT/CLWB bits masked off as asked,
 * to run the engine with another instruction on the same CPU.
 */
static uint32_t leaf7_mask = ~0u;

static int masked_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	int e = kvmnc_sys_real.cpuid(leaf, sub, r);

	if (!e && leaf == 7)
		r[1] &= leaf7_mask;
	return e;
}

static struct kvmnc_sys masked_sys;

/* Selects with the given leaf-7 bits hidden; returns what was selected. */
static struct kvmnc_cache_info use_insns(uint32_t mask)
{
	struct kvmnc_cache_info info;

	masked_sys = kvmnc_sys_real;
	masked_sys.cpuid = masked_cpuid;
	leaf7_mask = mask;
	kvmnc_sys = &masked_sys;
	die_on(kvmnc_cache_reselect(), "cache engine selection");
	kvmnc_cache_info(&info);
	return info;
}

#define NO_OPT	(~(1u << 23))
#define NO_CLWB (~(1u << 24))

enum mode { M_MEMCPY, M_READ, M_WRITE, M_FLUSH, NMODES };
static const char *const mode_names[] = {"memcpy", "copy_read", "copy_write", "flush"};

static void run_mode(enum mode m, char *d, const char *s, size_t n)
{
	switch (m) {
	case M_MEMCPY:
		memcpy(d, s, n);
		break;
	case M_READ:
		die_on(kvmnc_cache_copy_read(d, s, n), "copy_read");
		break;
	case M_WRITE:
		die_on(kvmnc_cache_copy_write(d, s, n), "copy_write");
		break;
	case M_FLUSH:
		die_on(kvmnc_cache_flush(s, n), "flush");
		break;
	case NMODES:
		break;
	}
}

/*
 * Seconds per call of @m for @n bytes. From 1 MiB up, one call on buffers
 * prepared just before it. Below, a batch walking consecutive slices of a
 * 2 MiB pool (cold: the pool evicted first, each call meets memory not in
 * the caches, as a migration pass walking pages does) or the same slice
 * again and again (warm). Samples are kept short (0.1 to 40 ms) so that a
 * neighbour's time slice spoils few of them.
 */
#define POOL (2u << 20)

static double measure(enum mode m, char *d, char *s, size_t n, bool cold)
{
	size_t calls = n >= (1u << 20) ? 1 : POOL / n;
	double t;

	if (calls == 1) {
		if (cold) {
			make_cold(s, n);
			make_cold(d, n);
		} else {
			make_warm(s, d, n);
		}
		t = now();
		run_mode(m, d, s, n);
		return now() - t;
	}
	if (cold) {
		make_cold(s, POOL);
		make_cold(d, POOL);
	} else {
		make_warm(s, d, n);
		run_mode(m, d, s, n);
	}
	t = now();
	for (size_t i = 0; i < calls; i++) {
		size_t off = cold ? i * n : 0;

		run_mode(m, d + off, s + off, n);
	}
	return (now() - t) / (double)calls;
}

struct result {
	size_t size;
	double gbps_med[2][NMODES], gbps_min[2][NMODES];
	double ratio_med[2][NMODES], ratio_min[2][NMODES];
};

static void sizes_table(char *src, char *dst, size_t max, struct result *res, int *nres)
{
	static const size_t sizes[] = {4096,	  65536,     1u << 20,	 2u << 20,
				       16u << 20, 64u << 20, 256u << 20, 1u << 30};

	printf("GB/s, median (min), and throughput ratio to memcpy (engine / memcpy GB/s, "
	       "> 1 is faster) of the medians and of the minimum times\n");
	printf("%-9s %-5s %16s %16s %16s %16s   %6s %6s %6s   %6s %6s\n", "size", "cache", "memcpy",
	       "copy_read", "copy_write", "flush", "read", "write", "flush", "rd min", "wr min");
	*nres = 0;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		struct result *r = &res[*nres];

		if (n > max)
			break;
		(*nres)++;
		r->size = n;
		for (int c = 0; c < 2; c++) {
			struct stat st[NMODES] = {0};
			char label[32];

			/* Small sizes: short samples, so more of them. */
			int samples = n >= (1u << 20) ? reps : reps * 8;

			for (int i = 0; i < samples; i++)
				for (int m = 0; m < NMODES; m++) {
					/* Rotate the order: no mode always runs first. */
					enum mode mm = (enum mode)((m + i) % NMODES);

					add(&st[mm], measure(mm, dst, src, n, c == 0));
				}
			for (int m = 0; m < NMODES; m++) {
				r->gbps_med[c][m] = (double)n / smed(&st[m]) / 1e9;
				r->gbps_min[c][m] = (double)n / smin(&st[m]) / 1e9;
				r->ratio_med[c][m] = r->gbps_med[c][m] / r->gbps_med[c][M_MEMCPY];
				r->ratio_min[c][m] = r->gbps_min[c][m] / r->gbps_min[c][M_MEMCPY];
			}
			if (n >= (1u << 20))
				snprintf(label, sizeof(label), "%zu MiB", n >> 20);
			else
				snprintf(label, sizeof(label), "%zu KiB", n >> 10);
			printf("%-9s %-5s", label, c ? "warm" : "cold");
			for (int m = 0; m < NMODES; m++)
				printf(" %7.2f (%6.2f)", r->gbps_med[c][m], r->gbps_min[c][m]);
			printf("   %6.3f %6.3f %6.3f   %6.3f %6.3f\n", r->ratio_med[c][M_READ],
			       r->ratio_med[c][M_WRITE], r->ratio_med[c][M_FLUSH],
			       r->ratio_min[c][M_READ], r->ratio_min[c][M_WRITE]);
			fflush(stdout);
		}
	}
}

/*
 * What a copy_from_guest does: look the range up, flush only what is
 * non-coherent. @hint NULL: a read-locked view and a full search per call;
 * otherwise the hinted query a per-thread hint allows.
 */
static void lookup_copy(struct kvmnc_rs *set, struct kvmnc_rs_hint *hint, char *d, const char *s,
			size_t len)
{
	const struct kvmnc_rs_view *v = NULL;
	unsigned int tok = 0;

	if (!hint)
		v = kvmnc_rs_read_lock(set, &tok);
	for (size_t off = 0; off < len;) {
		bool nc;
		uint64_t a = (uintptr_t)s + off;
		size_t n = (size_t)(hint ? kvmnc_rs_segment(set, hint, a, len - off, &nc)
					 : kvmnc_rs_view_segment(v, a, len - off, &nc));

		if (nc)
			die_on(kvmnc_cache_copy_read(d + off, s + off, n), "copy_read");
		else
			memcpy(d + off, s + off, n);
		off += n;
	}
	if (!hint)
		kvmnc_rs_read_unlock(set, tok);
}

/* @n ranges inside [g, g + glen) (covering it), or around it (none covering it). */
static void fill_set(struct kvmnc_rs *set, uintptr_t g, size_t glen, int n, bool inside)
{
	struct kvmnc_rs_range *r = calloc((size_t)n + 1, sizeof(*r));
	size_t per = glen / (size_t)(n ? n : 1) & ~(size_t)4095;

	for (int i = 0; i < n; i++) {
		if (inside) {
			r[i].start = g + (size_t)i * per;
			r[i].len = i == n - 1 ? glen - (size_t)i * per : per;
		} else {
			/* Half below, half above: the search goes all the way down. */
			uint64_t step = 1u << 20;

			r[i].start = i % 2 ? g + glen + (uint64_t)i * step
					   : g - (uint64_t)(i + 2) * step;
			r[i].len = 1u << 16;
		}
		r[i].slot = (uint32_t)i;
	}
	kvmnc_rs_init(set);
	die_on(kvmnc_rs_replace(set, r, (size_t)n), "rangeset");
	free(r);
}

enum k4 { K_MEMCPY, K_COH, K_COH_HINT, K_NC, K_NC_HINT, K_LOOKUP, K_LOOKUP_HINT, K_SNAP, NK4 };

struct k4res {
	double walk[NK4], hot[NK4];
};

/*
 * ns per 4 KiB call: walking a 64 MiB pool page by page, out of the caches
 * at the start of each repetition (a pre-copy pass), or one page (hot).
 * "coherent": the ranges lie around the pool, none covers it; "nc": they
 * cover it (1000 ranges: 64 KiB each), so every page is flushed.
 */
#define K4_PAGES 256 /* per sample: 1 MiB of the pool */

static void k4_table(char *src, char *dst, struct k4res res[3])
{
	static const int nranges[3] = {0, 10, 1000};
	const size_t glen = 64u << 20, pages = K4_PAGES;
	struct kvmnc_rs coh[3], nc[3];
	struct kvmnc_rs_view *snap[3];

	for (int k = 0; k < 3; k++) {
		fill_set(&coh[k], (uintptr_t)src, glen, nranges[k], false);
		fill_set(&nc[k], (uintptr_t)src, glen, nranges[k], true);
		die_on(kvmnc_rs_snapshot(&coh[k], &snap[k]), "snapshot");
	}
	printf("\nns per 4 KiB call, median of %d samples of %d calls (walk: consecutive pages "
	       "of 1 MiB of a 64 MiB pool, evicted first; hot: one page)\n",
	       reps * 8, K4_PAGES);
	printf("  coherent page: lookup says no flush; nc page: lookup, invalidate, copy; "
	       "view: full search per call; hint: kvmnc_rs_segment with a per-thread hint\n");
	printf("%-7s %-5s %7s %9s %9s %9s %9s %8s %8s %8s   %6s %6s %6s\n", "ranges", "", "memcpy",
	       "coh view", "coh hint", "nc view", "nc hint", "lk view", "lk hint", "lk snap",
	       "coh/m", "hint/m", "nc/m");
	for (int k = 0; k < 3; k++) {
		for (int hot = 0; hot < 2; hot++) {
			struct stat st[NK4] = {0};
			double *out = hot ? res[k].hot : res[k].walk;

			for (int i = 0; i < reps * 8; i++) {
				for (int j = 0; j < NK4; j++) {
					int m = (j + i) % NK4;
					struct kvmnc_rs_hint hint = {0};
					size_t base = (size_t)((i * NK4 + j) % 64) << 20;
					double t;

					if ((m == K_NC || m == K_NC_HINT) && !nranges[k])
						continue;
					make_cold(src + base, 1u << 20);
					t = now();
					for (size_t p = 0; p < pages; p++) {
						size_t off = base + (hot ? 0 : p * 4096);
						char *s = src + off, *d = dst + (p % 16) * 4096;
						bool c;

						switch (m) {
						case K_MEMCPY:
							memcpy(d, s, 4096);
							break;
						case K_COH:
							lookup_copy(&coh[k], NULL, d, s, 4096);
							break;
						case K_COH_HINT:
							lookup_copy(&coh[k], &hint, d, s, 4096);
							break;
						case K_NC:
							lookup_copy(&nc[k], NULL, d, s, 4096);
							break;
						case K_NC_HINT:
							lookup_copy(&nc[k], &hint, d, s, 4096);
							break;
						case K_LOOKUP: {
							unsigned int tok;
							const struct kvmnc_rs_view *v =
								kvmnc_rs_read_lock(&coh[k], &tok);

							sink = (char)kvmnc_rs_view_segment(
								v, (uintptr_t)s, 4096, &c);
							kvmnc_rs_read_unlock(&coh[k], tok);
							break;
						}
						case K_LOOKUP_HINT:
							sink = (char)kvmnc_rs_segment(
								&coh[k], &hint, (uintptr_t)s, 4096,
								&c);
							break;
						case K_SNAP:
							sink = (char)kvmnc_rs_view_segment(
								snap[k], (uintptr_t)s, 4096, &c);
							break;
						}
					}
					add(&st[m], (now() - t) / (double)pages * 1e9);
				}
			}
			for (int m = 0; m < NK4; m++)
				out[m] = st[m].n ? smed(&st[m]) : 0;
			printf("%-7d %-5s %7.0f %9.0f %9.0f %9.0f %9.0f %8.1f %8.1f %8.1f   %6.3f "
			       "%6.3f %6.3f\n",
			       nranges[k], hot ? "hot" : "walk", out[K_MEMCPY], out[K_COH],
			       out[K_COH_HINT], out[K_NC], out[K_NC_HINT], out[K_LOOKUP],
			       out[K_LOOKUP_HINT], out[K_SNAP], out[K_COH] / out[K_MEMCPY],
			       out[K_COH_HINT] / out[K_MEMCPY], out[K_NC] / out[K_MEMCPY]);
			fflush(stdout);
		}
	}
	for (int k = 0; k < 3; k++) {
		kvmnc_rs_view_free(snap[k]);
		kvmnc_rs_destroy(&coh[k]);
		kvmnc_rs_destroy(&nc[k]);
	}
}

/* ns per line of the selected instructions, on 2 MiB and on one 4 KiB page. */
static void lines_table(char *buf)
{
	static const struct {
		const char *name;
		uint32_t mask;
		bool wb; /* measured through kvmnc_cache_writeback */
	} insns[] = {
		{"clflush", NO_OPT & NO_CLWB, false},
		{"clflushopt", NO_CLWB, false},
		{"clwb", ~0u, true},
	};
	static const char *const states[] = {"not cached", "clean", "dirty"};
	uint32_t r[4] = {0};
	bool have[3] = {true, false, false};

	if (kvmnc_sys_real.cpuid(7, 0, r) == 0) {
		have[1] = r[1] & (1u << 23);
		have[2] = r[1] & (1u << 24);
	}
	printf("\nns per line, whole call including its fence / line count (median of %d)\n", reps);
	printf("%-11s %-11s %10s %10s\n", "insn", "lines were", "2 MiB", "4 KiB");
	for (int k = 0; k < 3; k++) {
		if (!have[k]) {
			printf("%-11s (not on this CPU)\n", insns[k].name);
			continue;
		}
		use_insns(insns[k].mask);
		for (int s = 0; s < 3; s++) {
			double res[2];

			for (int z = 0; z < 2; z++) {
				size_t n = z ? 4096 : 2u << 20;
				size_t calls = z ? 256 : 1;
				struct stat st = {0};

				for (int i = 0; i < reps; i++) {
					double t = 0;

					for (size_t c = 0; c < calls; c++) {
						char *p = buf + c * n;
						double t0;

						make_cold(p, n);
						if (s == 1)
							touch(p, n);
						if (s == 2)
							memset(p, i, n);
						t0 = now();
						if (insns[k].wb)
							die_on(kvmnc_cache_writeback(p, n), "wb");
						else
							die_on(kvmnc_cache_flush(p, n), "flush");
						t += now() - t0;
					}
					add(&st, t / (double)calls / (double)(n / 64) * 1e9);
				}
				res[z] = smed(&st);
			}
			printf("%-11s %-11s %10.2f %10.2f\n", insns[k].name, states[s], res[0],
			       res[1]);
		}
	}
	use_insns(~0u);
}

/* The alternatives, each against memcpy in the same interleaved loop. */
static void variants_table(char *src, char *dst, size_t max)
{
	static const struct {
		const char *name;
		enum mode m;
		struct kvmnc_cache_tuning t;
		uint32_t mask;
	} vs[] = {
		{"read: pipelined 256K, nt dst (default)",
		 M_READ,
		 {256 << 10, true, true, 1 << 20},
		 ~0u},
		{"read: pipelined 16K, nt dst", M_READ, {16 << 10, true, true, 0}, ~0u},
		{"read: pipelined 64K, nt dst", M_READ, {64 << 10, true, true, 0}, ~0u},
		{"read: pipelined 1M, nt dst", M_READ, {1 << 20, true, true, 0}, ~0u},
		{"read: chunked 256K, nt dst", M_READ, {256 << 10, false, true, 0}, ~0u},
		{"read: all lines, then nt copy", M_READ, {SIZE_MAX, false, true, 0}, ~0u},
		{"read: pipelined 64K, memcpy dst", M_READ, {64 << 10, true, true, SIZE_MAX}, ~0u},
		{"read: pipelined 256K, memcpy dst",
		 M_READ,
		 {256 << 10, true, true, SIZE_MAX},
		 ~0u},
		{"read: chunked 64K, memcpy dst", M_READ, {64 << 10, false, true, SIZE_MAX}, ~0u},
		{"read: all lines, then memcpy", M_READ, {SIZE_MAX, false, true, SIZE_MAX}, ~0u},
		{"read: default, clflush",
		 M_READ,
		 {256 << 10, true, true, 1 << 20},
		 NO_OPT & NO_CLWB},
		{"write: nt stores (default)", M_WRITE, {256 << 10, true, true, 1 << 20}, ~0u},
		{"write: memcpy + clwb per 64K", M_WRITE, {64 << 10, true, false, 1 << 20}, ~0u},
		{"write: memcpy + clwb, one pass", M_WRITE, {SIZE_MAX, true, false, 1 << 20}, ~0u},
		{"write: memcpy + clflushopt per 64K",
		 M_WRITE,
		 {64 << 10, true, false, 1 << 20},
		 NO_CLWB},
		{"write: memcpy + clflush per 64K",
		 M_WRITE,
		 {64 << 10, true, false, 1 << 20},
		 NO_OPT & NO_CLWB},
	};
	static const size_t sizes[] = {2u << 20, 16u << 20, 64u << 20};
	const size_t nv = sizeof(vs) / sizeof(vs[0]);
	struct kvmnc_cache_tuning def;

	kvmnc_cache_tune(NULL, &def);
	printf("\nvariants (each interleaved with memcpy): GB/s median (min), throughput ratio to "
	       "memcpy of the medians and of the minima\n");
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		size_t n = sizes[z];

		if (n > max)
			break;
		for (int c = 0; c < 2; c++) {
			struct stat mem = {0}, st[sizeof(vs) / sizeof(vs[0])];

			memset(st, 0, sizeof(st));
			for (int i = 0; i < reps; i++) {
				add(&mem, measure(M_MEMCPY, dst, src, n, c == 0));
				for (size_t k = 0; k < nv; k++) {
					size_t j = (k + (size_t)i) % nv;

					use_insns(vs[j].mask);
					kvmnc_cache_tune(&vs[j].t, NULL);
					add(&st[j], measure(vs[j].m, dst, src, n, c == 0));
				}
			}
			printf("%zu MiB, %s: memcpy %.2f (%.2f) GB/s; ratio of medians, of "
			       "minima\n",
			       n >> 20, c ? "warm" : "cold", (double)n / smed(&mem) / 1e9,
			       (double)n / smin(&mem) / 1e9);
			for (size_t k = 0; k < nv; k++)
				printf("  %-36s %7.2f (%6.2f)  %6.3f %6.3f\n", vs[k].name,
				       (double)n / smed(&st[k]) / 1e9,
				       (double)n / smin(&st[k]) / 1e9, smed(&mem) / smed(&st[k]),
				       smin(&mem) / smin(&st[k]));
			fflush(stdout);
		}
	}
	use_insns(~0u);
	kvmnc_cache_tune(&def, NULL);
}

static size_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (size_t)kb * 1024;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*end == 'G' || *end == 'g')
		v <<= 30;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	else if (*end == 'K' || *end == 'k')
		v <<= 10;
	return (size_t)v;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmnc-copy-bench [--max SIZE (256M; 1G)] [--reps N (7)] [--lines] "
		   "[--variants]\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"max", required_argument, NULL, 'm'}, {"reps", required_argument, NULL, 'r'},
		{"lines", no_argument, NULL, 'l'},     {"variants", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	size_t max = 256u << 20, avail, pool;
	bool do_lines = false, do_variants = false;
	struct kvmnc_cache_tuning tuning;
	struct kvmnc_cache_info info;
	struct result res[8];
	struct k4res k4[3];
	int c, nres;
	char *src, *dst;

	while ((c = getopt_long(argc, argv, "m:r:lvh", lopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			max = parse_size(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'l':
			do_lines = true;
			break;
		case 'v':
			do_variants = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (reps < 1 || reps > MAXREPS || max < 4096) {
		usage(stderr);
		return 2;
	}
	if (kvmnc_cache_info(&info) == -EOPNOTSUPP) {
		printf("kvmnc-copy-bench: no cache instructions on this CPU: nothing to measure\n");
		return 77;
	}
	/* Source and destination, each at least the 64 MiB the 4 KiB walk uses. */
	avail = mem_available();
	while (max > (64u << 20) && 2 * max > avail / 2)
		max /= 2;
	pool = max > (64u << 20) ? max : (64u << 20);
	src = buf_new(pool);
	dst = buf_new(pool);
	kvmnc_cache_tune(NULL, &tuning);
	printf("kvmnc-copy-bench: invalidate %s, write back %s, line %u, non-temporal stores %s; "
	       "read chunk %zu KiB%s, read destination non-temporal from %zu KiB, write side %s; "
	       "sizes up to %zu %s (MemAvailable %zu MiB), %d repetitions\n\n",
	       kvmnc_cache_insn_name(info.inval), kvmnc_cache_insn_name(info.wb), info.line,
	       info.nt_stores ? "yes" : "no", tuning.read_chunk >> 10,
	       tuning.read_pipeline ? " pipelined" : "", tuning.read_nt_min >> 10,
	       tuning.write_nt ? "non-temporal" : "memcpy + write-back",
	       max >= (1u << 20) ? max >> 20 : max >> 10, max >= (1u << 20) ? "MiB" : "KiB",
	       avail >> 20, reps);
	fflush(stdout);

	sizes_table(src, dst, max, res, &nres);
	k4_table(src, dst, k4);
	if (do_lines)
		lines_table(src);
	if (do_variants)
		variants_table(src, dst, max);

	printf("\ncache_inval=%s\ncache_wb=%s\n", kvmnc_cache_insn_name(info.inval),
	       kvmnc_cache_insn_name(info.wb));
	for (int i = 0; i < nres; i++) {
		const struct result *r = &res[i];
		char sz[32];

		if (r->size >= (1u << 20))
			snprintf(sz, sizeof(sz), "%zuMiB", r->size >> 20);
		else
			snprintf(sz, sizeof(sz), "%zuKiB", r->size >> 10);
		printf("memcpy_gbps_%s=%.2f\n", sz, r->gbps_med[0][M_MEMCPY]);
		for (int m = M_READ; m < NMODES; m++) {
			const char *name = mode_names[m];

			printf("%s_gbps_%s=%.2f\n", name, sz, r->gbps_med[0][m]);
			if (m != M_FLUSH) {
				printf("%s_ratio_%s=%.3f\n", name, sz, r->ratio_med[0][m]);
				printf("%s_ratio_%s_min=%.3f\n", name, sz, r->ratio_min[0][m]);
				printf("%s_ratio_%s_warm=%.3f\n", name, sz, r->ratio_med[1][m]);
			}
		}
	}
	for (int k = 0; k < 3; k++) {
		static const char *const nm[3] = {"0slots", "10slots", "1000slots"};
		const struct k4res *q = &k4[k];

		/*
		 * The headline is the hinted lookup, the one the helpers are meant
		 * to use (a per-thread hint); _view is a full search every call.
		 */
		printf("copy_4k_overhead_%s=%.3f\n", nm[k],
		       q->walk[K_COH_HINT] / q->walk[K_MEMCPY]);
		printf("copy_4k_overhead_%s_view=%.3f\n", nm[k],
		       q->walk[K_COH] / q->walk[K_MEMCPY]);
		printf("copy_4k_overhead_%s_hot=%.3f\n", nm[k],
		       q->hot[K_COH_HINT] / q->hot[K_MEMCPY]);
		printf("copy_4k_overhead_%s_hot_view=%.3f\n", nm[k],
		       q->hot[K_COH] / q->hot[K_MEMCPY]);
		printf("lookup_4k_ns_%s=%.1f\n", nm[k], q->walk[K_LOOKUP]);
		printf("lookup_hint_4k_ns_%s=%.1f\n", nm[k], q->walk[K_LOOKUP_HINT]);
		printf("lookup_snapshot_4k_ns_%s=%.1f\n", nm[k], q->walk[K_SNAP]);
		if (k) {
			printf("copy_4k_noncoherent_ratio_%s=%.3f\n", nm[k],
			       q->walk[K_NC_HINT] / q->walk[K_MEMCPY]);
			printf("copy_4k_noncoherent_ratio_%s_view=%.3f\n", nm[k],
			       q->walk[K_NC] / q->walk[K_MEMCPY]);
		}
	}
	munmap(src, pool);
	munmap(dst, pool);
	return 0;
}
