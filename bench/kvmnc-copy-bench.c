// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kvmnc-copy-bench: the migration helpers (kvmnc_copy_from_guest,
 * kvmnc_copy_to_guest, kvmnc_flush) against memcpy, side by side in one
 * run, repetitions interleaved, min and median of each.
 *
 *   sizes    GB/s of memcpy and of each helper on a non-coherent memslot,
 *            4 KiB to 1 GiB (--max; capped by MemAvailable), with both
 *            buffers out of the caches before each call ("cold": the
 *            migration case) and in them ("warm"); beside them, as a
 *            diagnostic, the read side's copy without its invalidations
 *            ("no-inval", not a valid read of non-coherent memory)
 *   4k       ns per 4 KiB call at 0, 10 and 1000 non-coherent memslots:
 *            a plain page (the lookup's cost), a non-coherent page (lookup
 *            and cache maintenance), and plain pages in random order between
 *            1000 slots (the lookup when the per-thread hint misses)
 *   lines    ns per line of each cache instruction this CPU has (--lines)
 *   variants the alternatives the engine's defaults were chosen against
 *            (--variants)
 *   parts    ns per 64-byte line of the read side's parts alone and in
 *            pairs, at 256 MiB and the largest size (--parts): loads,
 *            non-temporal stores, CLFLUSHOPT; which of them overlap
 *
 * The calls measured are the public API's. The state they run against is
 * set up from inside: this host may offer no mechanism at all (no flag, no
 * device, no quirk), so each handle is opened on a real VM with its region
 * mechanism set to the memslot flag, and its kvmnc_set_region() calls reach
 * a kernel that accepts them (the seam with a no-op memslot ioctl). The
 * library's view is then what it would be on a kernel with the flag; no
 * system call is involved in a copy either way. memcpy is called through a
 * pointer, so that it is the same glibc function the helpers call.
 *
 * Ends with key=value lines (ratios of the cold medians): copy_read_ratio_
 * and copy_write_ratio_ are throughput ratios to memcpy (higher is better),
 * copy_read_noinval_ratio_ the diagnostic's, copy_4k_overhead_ time ratios
 * (lower is better).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "cacheops.h"
#include "bench.h"
#include "compat-kvm.h"
#include "internal.h"

#define MAXREPS 1024
#define MIB	(1024.0 * 1024.0)
#define POOL4K	(64u << 20) /* the 4 KiB walk's pool */

static int reps = 7;
static int kvm_fd = -1;

/* The same memcpy the library calls, not one the compiler inlines here. */
static void *(*volatile memcpy_fn)(void *, const void *, size_t) = memcpy;

struct samples {
	double t[MAXREPS];
	int n;
};

static void add(struct samples *s, double t)
{
	if (s->n < MAXREPS)
		s->t[s->n++] = t;
}

static double smin(struct samples *s)
{
	qsort(s->t, (size_t)s->n, sizeof(double), bench_cmp_double);
	return s->t[0];
}

static double smed(struct samples *s)
{
	qsort(s->t, (size_t)s->n, sizeof(double), bench_cmp_double);
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

/* ---- handles with non-coherent memslots ---------------------------------------- */

/* Every memslot call succeeds at once; everything else is the real kernel. */
static int noop_ioctl(int fd, unsigned long req, unsigned long arg)
{
	if (req == KVM_SET_USER_MEMORY_REGION || req == KVM_SET_USER_MEMORY_REGION2)
		return 0;
	return kvmnc_sys_real.ioctl(fd, req, arg);
}

static struct kvmnc_sys noop_sys;

struct nch {
	struct kvmnc *h;
	int vm;
	uint32_t slots;
};

static struct nch nch_open(void)
{
	struct nch n = {.vm = ioctl(kvm_fd, KVM_CREATE_VM, 0)};

	if (n.vm < 0) {
		perror("KVM_CREATE_VM");
		exit(2);
	}
	die_on(kvmnc_open(n.vm, NULL, &n.h), "kvmnc_open");
	/* What a kernel with KVM_MEM_NON_COHERENT_DMA gives (see the top of this file). */
	kvmnc_handle_pretend_mechanism(n.h, KVMNC_MECH_MEMSLOT_FLAG);
	return n;
}

/* One more non-coherent memslot over [hva, hva + len), through the public call. */
static void nch_add(struct nch *n, uintptr_t hva, size_t len)
{
	struct kvmnc_region r = {
		.sz = sizeof(r),
		.slot = n->slots,
		.guest_phys_addr = (uint64_t)n->slots << 32,
		.memory_size = len,
		.userspace_addr = hva,
		.kvmnc_flags = KVMNC_REGION_NONCOHERENT,
	};

	noop_sys = kvmnc_sys_real;
	noop_sys.ioctl = noop_ioctl;
	kvmnc_sys = &noop_sys;
	die_on(kvmnc_set_region(n->h, &r), "kvmnc_set_region");
	kvmnc_sys = &kvmnc_sys_real;
	n->slots++;
}

static void nch_close(struct nch *n)
{
	kvmnc_close(n->h);
	close(n->vm);
}

/* ---- buffers out of the caches, or in them ---------------------------------------- */

static volatile char sink;

/* Preparation, not timed. */
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
	kvmnc_sys = &kvmnc_sys_real;
	kvmnc_cache_info(&info);
	return info;
}

#define NO_OPT	(~(1u << 23))
#define NO_CLWB (~(1u << 24))

/* ---- sizes ---------------------------------------------------------------------- */

/*
 * @g is the guest buffer (one non-coherent memslot of @h), @b plain memory.
 * Reads copy g to b, writes b to g; each helper has its memcpy beside it.
 */
enum mode { M_MEMCPY_RD, M_READ, M_MEMCPY_WR, M_WRITE, M_FLUSH, M_NOINV, NMODES };

static struct kvmnc *bench_h;

static void run_mode(enum mode m, char *g, char *b, size_t n)
{
	switch (m) {
	case M_MEMCPY_RD:
		memcpy_fn(b, g, n);
		break;
	case M_READ:
		die_on(kvmnc_copy_from_guest(bench_h, b, g, n), "copy_from_guest");
		break;
	case M_MEMCPY_WR:
		memcpy_fn(g, b, n);
		break;
	case M_WRITE:
		die_on(kvmnc_copy_to_guest(bench_h, g, b, n), "copy_to_guest");
		break;
	case M_FLUSH:
		die_on(kvmnc_flush(bench_h, g, n), "flush");
		break;
	case M_NOINV:
		/*
		 * Diagnostic only: the write side's engine copying g to b is,
		 * from 1 MiB (where the read side streams too), the read side's
		 * copy (same loads, same non-temporal stores, same direction)
		 * without a single invalidation, and without the fence after
		 * each 256 KiB chunk. Its distance to memcpy is the copy's; the
		 * read side's distance to it is what invalidating costs.
		 */
		die_on(kvmnc_cache_copy_write(b, g, n), "copy without invalidation");
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

static double measure(enum mode m, char *g, char *b, size_t n, bool cold)
{
	size_t calls = n >= (1u << 20) ? 1 : POOL / n;
	bool rd = m == M_MEMCPY_RD || m == M_READ || m == M_FLUSH || m == M_NOINV;
	char *src = rd ? g : b, *dst = rd ? b : g;
	double t;

	if (calls == 1) {
		if (cold) {
			make_cold(src, n);
			make_cold(dst, n);
		} else {
			make_warm(src, dst, n);
		}
		t = bench_now();
		run_mode(m, g, b, n);
		return bench_now() - t;
	}
	if (cold) {
		make_cold(src, POOL);
		make_cold(dst, POOL);
	} else {
		make_warm(src, dst, n);
		run_mode(m, g, b, n);
	}
	t = bench_now();
	for (size_t i = 0; i < calls; i++) {
		size_t off = cold ? i * n : 0;

		run_mode(m, g + off, b + off, n);
	}
	return (bench_now() - t) / (double)calls;
}

struct result {
	size_t size;
	double gbps_med[2][NMODES], gbps_min[2][NMODES];
	/*
	 * Throughput ratios: read, flush and no-inval to memcpy g->b, write to
	 * memcpy b->g.
	 */
	double ratio_med[2][NMODES], ratio_min[2][NMODES];
};

static enum mode base_of(enum mode m)
{
	return m == M_WRITE || m == M_MEMCPY_WR ? M_MEMCPY_WR : M_MEMCPY_RD;
}

static void size_label(char *buf, size_t len, size_t n, bool compact)
{
	if (n >= (1u << 30))
		snprintf(buf, len, compact ? "%zuGiB" : "%zu GiB", n >> 30);
	else if (n >= (1u << 20))
		snprintf(buf, len, compact ? "%zuMiB" : "%zu MiB", n >> 20);
	else
		snprintf(buf, len, compact ? "%zuKiB" : "%zu KiB", n >> 10);
}

static void sizes_table(char *g, char *b, size_t max, struct result *res, int *nres)
{
	static const size_t sizes[] = {4096,	  65536,      1u << 20,	  2u << 20, 16u << 20,
				       64u << 20, 256u << 20, 512u << 20, 1u << 30};

	printf("GB/s, median (min); throughput ratio to memcpy (> 1 faster) of the medians "
	       "and of the minimum times\n");
	printf("%-8s %-5s %16s %16s %16s %16s %16s %16s   %6s %6s %6s %6s   %6s %6s\n", "size",
	       "cache", "memcpy g->b", "copy_from", "memcpy b->g", "copy_to", "flush", "no-inval",
	       "read", "write", "flush", "noinv", "rd min", "wr min");
	*nres = 0;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		struct result *r = &res[*nres];

		if (n > max)
			break;
		(*nres)++;
		r->size = n;
		for (int c = 0; c < 2; c++) {
			struct samples st[NMODES] = {0};
			char label[32];
			/* Small sizes: short samples, so more of them; the largest fewer. */
			int samples = n >= (256u << 20) ? (reps + 1) / 2
				      : n >= (1u << 20) ? reps
							: reps * 8;

			for (int i = 0; i < samples; i++)
				for (int m = 0; m < NMODES; m++) {
					/* Rotate the order: no mode always runs first. */
					enum mode mm = (enum mode)((m + i) % NMODES);

					add(&st[mm], measure(mm, g, b, n, c == 0));
				}
			for (int m = 0; m < NMODES; m++) {
				r->gbps_med[c][m] = (double)n / smed(&st[m]) / 1e9;
				r->gbps_min[c][m] = (double)n / smin(&st[m]) / 1e9;
			}
			for (int m = 0; m < NMODES; m++) {
				enum mode base = base_of((enum mode)m);

				r->ratio_med[c][m] = r->gbps_med[c][m] / r->gbps_med[c][base];
				r->ratio_min[c][m] = r->gbps_min[c][m] / r->gbps_min[c][base];
			}
			size_label(label, sizeof(label), n, false);
			printf("%-8s %-5s", label, c ? "warm" : "cold");
			for (int m = 0; m < NMODES; m++)
				printf(" %7.2f (%6.2f)", r->gbps_med[c][m], r->gbps_min[c][m]);
			printf("   %6.3f %6.3f %6.3f %6.3f   %6.3f %6.3f\n",
			       r->ratio_med[c][M_READ], r->ratio_med[c][M_WRITE],
			       r->ratio_med[c][M_FLUSH], r->ratio_med[c][M_NOINV],
			       r->ratio_min[c][M_READ], r->ratio_min[c][M_WRITE]);
			fflush(stdout);
		}
	}
}

/* ---- 4 KiB calls ------------------------------------------------------------------ */

enum k4 { K_MEMCPY, K_COH, K_NC, K_MEMCPY_RAND, K_MISS, NK4 };

struct k4res {
	double walk[NK4], hot[NK4];
};

/*
 * @n slots inside [p, p + len) (covering it), or around it (none covering
 * it: half below, half above, so that a search goes all the way down).
 * The addresses around it are never touched.
 */
static struct nch nc_config(uintptr_t p, size_t len, int n, bool inside)
{
	struct nch h = nch_open();
	size_t per = len / (size_t)(n ? n : 1) & ~(size_t)4095;

	for (int i = 0; i < n; i++) {
		if (inside)
			nch_add(&h, p + (size_t)i * per, i == n - 1 ? len - (size_t)i * per : per);
		else if (i % 2)
			nch_add(&h, p + len + (uintptr_t)i * (1u << 20), 1u << 16);
		else
			nch_add(&h, p - (uintptr_t)(i + 2) * (1u << 20), 1u << 16);
	}
	return h;
}

/*
 * ns per 4 KiB call: walking a 64 MiB pool page by page, out of the caches
 * at the start of each sample (a pre-copy pass), or one page (hot).
 * coh: a page no slot covers; nc: a page inside a non-coherent slot (1000
 * slots of 64 KiB cover the pool); miss: pages between 1000 slots of 32 KiB
 * at a 64 KiB stride, in random order, so that the hint never holds.
 */
#define K4_PAGES 256 /* per sample: 1 MiB of the pool */

static void k4_table(char *src, char *dst, struct k4res res[3])
{
	static const int nslots[3] = {0, 10, 1000};
	struct nch coh[3], nc[3], miss;
	size_t order[K4_PAGES];

	for (int k = 0; k < 3; k++) {
		coh[k] = nc_config((uintptr_t)src, POOL4K, nslots[k], false);
		nc[k] = nc_config((uintptr_t)src, POOL4K, nslots[k], true);
	}
	miss = nch_open();
	for (int i = 0; i < 1000; i++)
		nch_add(&miss, (uintptr_t)src + (size_t)i * 65536, 32768);
	/* Pages of the uncovered halves, in an order no two neighbours share a run. */
	for (size_t p = 0; p < K4_PAGES; p++)
		order[p] = (p * 37 % K4_PAGES) / 8 * 16 + 8 + p % 8;

	printf("\nns per 4 KiB call, median of %d samples of %d calls (walk: consecutive pages "
	       "of 1 MiB of a 64 MiB pool, evicted first; hot: one page)\n",
	       reps * 8, K4_PAGES);
	printf("  coh: a page no slot covers; nc: a page inside a non-coherent slot; rand/miss: "
	       "plain pages in random order between 1000 slots (memcpy of the same pages)\n");
	printf("%-6s %-5s %8s %9s %9s %9s %9s   %7s %7s %7s\n", "slots", "", "memcpy", "coh", "nc",
	       "memcpy rd", "miss", "coh/m", "nc/m", "miss/m");
	for (int k = 0; k < 3; k++) {
		for (int hot = 0; hot < 2; hot++) {
			struct samples st[NK4] = {0};
			double *out = hot ? res[k].hot : res[k].walk;

			for (int i = 0; i < reps * 8; i++) {
				for (int j = 0; j < NK4; j++) {
					int m = (j + i) % NK4;
					size_t base = (size_t)((i * NK4 + j) % 64) << 20;
					struct kvmnc *h = m == K_NC	? nc[k].h
							  : m == K_MISS ? miss.h
									: coh[k].h;
					double t;

					bool rnd = m == K_MEMCPY_RAND || m == K_MISS;
					/* The random pages span 2 MiB (every other 32 KiB). */
					size_t rbase = base & ~(size_t)((2u << 20) - 1);

					if (m == K_NC && !nslots[k])
						continue;
					if (rnd)
						make_cold(src + rbase, 2u << 20);
					else
						make_cold(src + base, 1u << 20);
					t = bench_now();
					for (size_t p = 0; p < K4_PAGES; p++) {
						size_t pg = rnd ? order[p] : hot ? 0 : p;
						char *s = src + (rnd ? rbase : base) + pg * 4096;
						char *d = dst + (p % 16) * 4096;

						if (m == K_MEMCPY || m == K_MEMCPY_RAND)
							memcpy_fn(d, s, 4096);
						else
							die_on(kvmnc_copy_from_guest(h, d, s, 4096),
							       "copy_from_guest");
					}
					add(&st[m], (bench_now() - t) / (double)K4_PAGES * 1e9);
				}
			}
			for (int m = 0; m < NK4; m++)
				out[m] = st[m].n ? smed(&st[m]) : 0;
			printf("%-6d %-5s %8.0f %9.0f %9.0f %9.0f %9.0f   %7.3f %7.3f %7.3f\n",
			       nslots[k], hot ? "hot" : "walk", out[K_MEMCPY], out[K_COH],
			       out[K_NC], out[K_MEMCPY_RAND], out[K_MISS],
			       out[K_COH] / out[K_MEMCPY], out[K_NC] / out[K_MEMCPY],
			       out[K_MISS] / out[K_MEMCPY_RAND]);
			fflush(stdout);
		}
	}
	for (int k = 0; k < 3; k++) {
		nch_close(&coh[k]);
		nch_close(&nc[k]);
	}
	nch_close(&miss);
}

/* ---- lines and variants ------------------------------------------------------------ */

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
				struct samples st = {0};

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
						t0 = bench_now();
						if (insns[k].wb)
							die_on(kvmnc_cache_writeback(p, n), "wb");
						else
							die_on(kvmnc_cache_flush(p, n), "flush");
						t += bench_now() - t0;
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

/* The alternatives, each against memcpy in the same interleaved loop, through the helpers. */
static void variants_table(char *g, char *b, size_t max)
{
	static const struct {
		const char *name;
		enum mode m;
		struct kvmnc_cache_tuning t;
		uint32_t mask;
	} vs[] = {
		{"read: 4 streams, spread (default)",
		 M_READ,
		 {256 << 10, true, true, 1 << 20, true, true},
		 ~0u},
		{"read: 4 streams, batch",
		 M_READ,
		 {256 << 10, true, true, 1 << 20, true, false},
		 ~0u},
		{"read: 1 stream, spread",
		 M_READ,
		 {256 << 10, true, true, 1 << 20, false, true},
		 ~0u},
		{"read: 1 stream, batch (1.2)",
		 M_READ,
		 {256 << 10, true, true, 1 << 20, false, false},
		 ~0u},
		{"read: 4 streams, spread, 64K",
		 M_READ,
		 {64 << 10, true, true, 0, true, true},
		 ~0u},
		{"read: 4 streams, spread, 1M", M_READ, {1 << 20, true, true, 0, true, true}, ~0u},
		/* A chunk of one core's L2 (2 MiB on the Xeon measured: 4 MiB, two instances). */
		{"read: 4 streams, spread, 2M", M_READ, {2 << 20, true, true, 0, true, true}, ~0u},
		{"read: chunked 256K, nt dst",
		 M_READ,
		 {256 << 10, false, true, 0, true, true},
		 ~0u},
		{"read: all lines, then nt copy",
		 M_READ,
		 {SIZE_MAX, false, true, 0, true, true},
		 ~0u},
		{"read: pipelined 256K, memcpy dst",
		 M_READ,
		 {256 << 10, true, true, SIZE_MAX, true, true},
		 ~0u},
		{"read: all lines, then memcpy",
		 M_READ,
		 {SIZE_MAX, false, true, SIZE_MAX, true, true},
		 ~0u},
		{"diagnostic: read's copy, no inval",
		 M_NOINV,
		 {256 << 10, true, true, 1 << 20, true, true},
		 ~0u},
		{"read: default, clflush",
		 M_READ,
		 {256 << 10, true, true, 1 << 20, true, true},
		 NO_OPT & NO_CLWB},
		{"write: nt, 4 streams (default)",
		 M_WRITE,
		 {256 << 10, true, true, 1 << 20, true, true},
		 ~0u},
		{"write: nt, 1 stream (1.2)",
		 M_WRITE,
		 {256 << 10, true, true, 1 << 20, false, true},
		 ~0u},
		{"write: memcpy + clwb per 64K",
		 M_WRITE,
		 {64 << 10, true, false, 1 << 20, true, true},
		 ~0u},
		{"write: memcpy + clwb, one pass",
		 M_WRITE,
		 {SIZE_MAX, true, false, 1 << 20, true, true},
		 ~0u},
		{"write: memcpy + clflushopt per 64K",
		 M_WRITE,
		 {64 << 10, true, false, 1 << 20, true, true},
		 NO_CLWB},
	};
	static const size_t sizes[] = {2u << 20, 64u << 20, 1u << 30};
	const size_t nv = sizeof(vs) / sizeof(vs[0]);
	struct kvmnc_cache_tuning def;

	kvmnc_cache_tune(NULL, &def);
	printf("\nvariants (each interleaved with memcpy in its direction): GB/s median (min), "
	       "throughput ratio to memcpy of the medians and of the minima\n");
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		size_t n = sizes[z];

		if (n > max)
			break;
		for (int c = 0; c < 2; c++) {
			struct samples mem[2], st[sizeof(vs) / sizeof(vs[0])];

			memset(st, 0, sizeof(st));
			memset(mem, 0, sizeof(mem));
			for (int i = 0; i < reps; i++) {
				add(&mem[0], measure(M_MEMCPY_RD, g, b, n, c == 0));
				add(&mem[1], measure(M_MEMCPY_WR, g, b, n, c == 0));
				for (size_t k = 0; k < nv; k++) {
					size_t j = (k + (size_t)i) % nv;

					use_insns(vs[j].mask);
					kvmnc_cache_tune(&vs[j].t, NULL);
					add(&st[j], measure(vs[j].m, g, b, n, c == 0));
				}
			}
			printf("%zu MiB, %s: memcpy g->b %.2f (%.2f), b->g %.2f (%.2f) GB/s\n",
			       n >> 20, c ? "warm" : "cold", (double)n / smed(&mem[0]) / 1e9,
			       (double)n / smin(&mem[0]) / 1e9, (double)n / smed(&mem[1]) / 1e9,
			       (double)n / smin(&mem[1]) / 1e9);
			for (size_t k = 0; k < nv; k++) {
				struct samples *base = &mem[vs[k].m == M_WRITE];

				printf("  %-36s %7.2f (%6.2f)  %6.3f %6.3f\n", vs[k].name,
				       (double)n / smed(&st[k]) / 1e9,
				       (double)n / smin(&st[k]) / 1e9, smed(base) / smed(&st[k]),
				       smin(base) / smin(&st[k]));
			}
			fflush(stdout);
		}
	}
	use_insns(~0u);
	kvmnc_cache_tune(&def, NULL);
}

/*
 * The read side's three kinds of work per 64-byte line, alone and
 * together, in its own order (16 KiB blocks as four streams 4 KiB apart,
 * 128 bytes of each in turn, the invalidations one line per 64 bytes
 * copied and an MFENCE per 256 KiB): where the time goes, and which parts
 * overlap. Not the engine (no edges, no chunk pipeline, no trace hook):
 * each row only has what its name says. @g and @b are page-aligned.
 * Timed in this thread's CPU time, not wall time: on a shared host the
 * time slices lost to other jobs would otherwise swamp costs per line.
 */
enum part { P_LOAD = 1, P_NT = 2, P_INVAL = 4 };

#if defined(__x86_64__)
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Inlined with a constant @what: each row's loop has only its own work. */
static inline __attribute__((always_inline)) void parts_body(char *d, const char *s, size_t n,
							     int what)
{
	__m128i acc = _mm_setzero_si128(), z = _mm_set1_epi32(1);
	/* As the engine does: the invalidations run one 256 KiB chunk ahead. */
	const char *f = s + (256u << 10), *end = s + n;

	for (size_t c = 0; c < n; c += 256u << 10) {
		for (size_t o = c; o < c + (256u << 10) && o < n; o += 4 * 4096)
			for (size_t i = 0; i < 4096; i += 128)
				for (size_t k = 0; k < 4; k++) {
					size_t x = o + k * 4096 + i;

					for (size_t l = 0; l < 128; l += 16) {
						__m128i v = z;

						if (l % 64 == 0 && (what & P_INVAL) && f < end) {
							__asm__ volatile(
								"clflushopt %0"
								: "+m"(*(volatile char *)(uintptr_t)
									       f));
							f += 64;
						}
						if (what & P_LOAD) {
							v = _mm_load_si128(
								(const __m128i *)(s + x + l));
							acc = _mm_xor_si128(acc, v);
						}
						if (what & P_NT)
							_mm_stream_si128((__m128i *)(d + x + l), v);
					}
				}
		if (what & P_INVAL)
			__asm__ volatile("mfence" ::: "memory");
	}
	__asm__ volatile("sfence" ::: "memory");
	sink = (char)_mm_cvtsi128_si32(acc);
}

static void __attribute__((noinline)) parts_run(char *d, const char *s, size_t n, int what)
{
	switch (what) {
#define PART(w)                                                                                    \
	case w:                                                                                    \
		parts_body(d, s, n, w);                                                            \
		break
		PART(P_LOAD);
		PART(P_NT);
		PART(P_INVAL);
		PART(P_LOAD | P_INVAL);
		PART(P_NT | P_INVAL);
		PART(P_LOAD | P_NT);
		PART(P_LOAD | P_NT | P_INVAL);
#undef PART
	}
}

static void parts_table(char *g, char *b, size_t max)
{
	static const struct {
		const char *name;
		int what;
	} ps[] = {
		{"loads", P_LOAD},
		{"nt stores", P_NT},
		{"clflushopt", P_INVAL},
		{"loads + clflushopt", P_LOAD | P_INVAL},
		{"nt stores + clflushopt", P_NT | P_INVAL},
		{"copy (loads + nt stores)", P_LOAD | P_NT},
		{"copy + clflushopt", P_LOAD | P_NT | P_INVAL},
	};
	const size_t np = sizeof(ps) / sizeof(ps[0]);
	size_t sizes[2] = {256u << 20, max & ~(size_t)((256u << 10) - 1)};
	struct kvmnc_cache_info info;

	kvmnc_cache_info(&info);
	printf("\nparts of the read side, ns per 64-byte line, median (min) of %d, each beside "
	       "memcpy g->b; cold buffers; thread CPU time\n",
	       reps);
	if (info.inval != KVMNC_CACHE_CLFLUSHOPT) {
		printf("  (no CLFLUSHOPT on this CPU)\n");
		return;
	}
	for (int z = 0; z < 2; z++) {
		size_t n = sizes[z];
		struct samples mem = {0}, st[sizeof(ps) / sizeof(ps[0])];
		double lines = (double)(n / 64);

		if (n > max || (z && n == sizes[0]))
			break;
		memset(st, 0, sizeof(st));
		for (int i = 0; i < reps; i++) {
			double t;

			make_cold(g, n);
			make_cold(b, n);
			t = cpu_now();
			memcpy_fn(b, g, n);
			add(&mem, cpu_now() - t);
			for (size_t k = 0; k < np; k++) {
				size_t j = (k + (size_t)i) % np;

				make_cold(g, n);
				make_cold(b, n);
				t = cpu_now();
				parts_run(b, g, n, ps[j].what);
				add(&st[j], cpu_now() - t);
			}
		}
		printf("%zu MiB: memcpy %.2f (%.2f)\n", n >> 20, smed(&mem) / lines * 1e9,
		       smin(&mem) / lines * 1e9);
		for (size_t k = 0; k < np; k++)
			printf("  %-26s %6.2f (%6.2f)\n", ps[k].name, smed(&st[k]) / lines * 1e9,
			       smin(&st[k]) / lines * 1e9);
		fflush(stdout);
	}
}
#else
static void parts_table(char *g, char *b, size_t max)
{
	(void)g;
	(void)b;
	(void)max;
	printf("\nparts: x86-64 only\n");
}
#endif

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
	fprintf(f, "usage: kvmnc-copy-bench [--max SIZE (1G)] [--reps N (7)] [--lines] "
		   "[--variants] [--parts] [--no-sizes]\n");
}

static double load_avg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"max", required_argument, NULL, 'm'}, {"reps", required_argument, NULL, 'r'},
		{"lines", no_argument, NULL, 'l'},     {"variants", no_argument, NULL, 'v'},
		{"parts", no_argument, NULL, 'p'},     {"no-sizes", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	size_t max = 1u << 30, avail, pool;
	bool do_lines = false, do_variants = false, do_parts = false, do_sizes = true;
	struct kvmnc_cache_tuning tuning;
	struct kvmnc_cache_info info;
	struct result res[9];
	struct k4res k4[3];
	struct nch big;
	int c, nres = 0;
	char *g, *b;

	while ((c = getopt_long(argc, argv, "m:r:lvpnh", lopts, NULL)) != -1) {
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
		case 'p':
			do_parts = true;
			break;
		case 'n':
			do_sizes = false;
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
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		printf("kvmnc-copy-bench: /dev/kvm: %s (the handles need a VM)\n", strerror(errno));
		return 77;
	}
	/* Guest and plain buffers, each at least the 64 MiB the 4 KiB walk uses. */
	avail = mem_available();
	while (max > POOL4K && 2 * max > avail / 2)
		max /= 2;
	pool = max > POOL4K ? max : POOL4K;
	g = buf_new(pool);
	b = buf_new(pool);
	kvmnc_cache_tune(NULL, &tuning);
	printf("kvmnc-copy-bench %s: invalidate %s, write back %s, line %u, non-temporal stores "
	       "%s; read chunk %zu KiB%s%s, read destination non-temporal from %zu KiB, write side "
	       "%s, %s; sizes up to %zu MiB (MemAvailable %zu MiB), %d repetitions; load average "
	       "%.2f "
	       "at the start\n\n",
	       kvmnc_version(), kvmnc_cache_insn_name(info.inval), kvmnc_cache_insn_name(info.wb),
	       info.line, info.nt_stores ? "yes" : "no", tuning.read_chunk >> 10,
	       tuning.read_pipeline ? " pipelined" : "",
	       tuning.read_spread ? ", invalidations spread" : "", tuning.read_nt_min >> 10,
	       tuning.write_nt ? "non-temporal" : "memcpy + write-back",
	       tuning.streams ? "4 streams" : "1 stream", max >> 20, avail >> 20, reps, load_avg());
	fflush(stdout);

	/* The guest buffer is one non-coherent memslot; the plain one is no guest memory. */
	big = nch_open();
	nch_add(&big, (uintptr_t)g, pool);
	bench_h = big.h;
	if (kvmnc_hva_is_noncoherent(bench_h, g, pool) != 1 ||
	    kvmnc_hva_is_noncoherent(bench_h, b, pool) != 0) {
		fprintf(stderr, "kvmnc-copy-bench: the set-up memslot is not what it should be\n");
		return 2;
	}
	if (do_sizes)
		sizes_table(g, b, max, res, &nres);
	k4_table(g, b, k4);
	if (do_lines)
		lines_table(g);
	if (do_variants)
		variants_table(g, b, max);
	if (do_parts)
		parts_table(g, b, max);
	nch_close(&big);

	printf("\ncache_inval=%s\ncache_wb=%s\nload_avg_end=%.2f\n",
	       kvmnc_cache_insn_name(info.inval), kvmnc_cache_insn_name(info.wb), load_avg());
	for (int i = 0; i < nres; i++) {
		const struct result *r = &res[i];
		char sz[32];

		size_label(sz, sizeof(sz), r->size, true);
		printf("memcpy_gbps_%s=%.2f\n", sz, r->gbps_med[0][M_MEMCPY_RD]);
		printf("memcpy_to_gbps_%s=%.2f\n", sz, r->gbps_med[0][M_MEMCPY_WR]);
		printf("copy_from_gbps_%s=%.2f\n", sz, r->gbps_med[0][M_READ]);
		printf("copy_to_gbps_%s=%.2f\n", sz, r->gbps_med[0][M_WRITE]);
		printf("flush_gbps_%s=%.2f\n", sz, r->gbps_med[0][M_FLUSH]);
		printf("copy_read_ratio_%s=%.3f\n", sz, r->ratio_med[0][M_READ]);
		printf("copy_write_ratio_%s=%.3f\n", sz, r->ratio_med[0][M_WRITE]);
		printf("copy_read_ratio_%s_min=%.3f\n", sz, r->ratio_min[0][M_READ]);
		printf("copy_write_ratio_%s_min=%.3f\n", sz, r->ratio_min[0][M_WRITE]);
		printf("copy_read_ratio_%s_warm=%.3f\n", sz, r->ratio_med[1][M_READ]);
		printf("copy_write_ratio_%s_warm=%.3f\n", sz, r->ratio_med[1][M_WRITE]);
		printf("copy_read_noinval_ratio_%s=%.3f\n", sz, r->ratio_med[0][M_NOINV]);
	}
	for (int k = 0; k < 3; k++) {
		static const char *const nm[3] = {"0slots", "10slots", "1000slots"};
		const struct k4res *q = &k4[k];

		printf("copy_4k_ns_%s=%.1f\n", nm[k], q->walk[K_COH]);
		printf("memcpy_4k_ns_%s=%.1f\n", nm[k], q->walk[K_MEMCPY]);
		printf("copy_4k_overhead_%s=%.3f\n", nm[k], q->walk[K_COH] / q->walk[K_MEMCPY]);
		printf("copy_4k_overhead_%s_hot=%.3f\n", nm[k], q->hot[K_COH] / q->hot[K_MEMCPY]);
		if (k) {
			printf("copy_4k_noncoherent_ratio_%s=%.3f\n", nm[k],
			       q->walk[K_NC] / q->walk[K_MEMCPY]);
			printf("copy_4k_noncoherent_ratio_%s_hot=%.3f\n", nm[k],
			       q->hot[K_NC] / q->hot[K_MEMCPY]);
		}
	}
	printf("copy_4k_overhead_1000slots_miss=%.3f\n",
	       k4[2].walk[K_MISS] / k4[2].walk[K_MEMCPY_RAND]);
	munmap(g, pool);
	munmap(b, pool);
	close(kvm_fd);
	return 0;
}
