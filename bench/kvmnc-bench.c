// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kvmnc-bench: the library against the raw kernel interface, side by side
 * in one run, on the real /dev/kvm. Prints a table and key=value lines.
 *
 *   probe         cold (first) vs cached probe: system calls and time
 *   memslot       the library's own cost per kvmnc_set_region call, against a
 *                 no-op kernel behind its seam (ns, deterministic), and N slots
 *                 through kvmnc_set_region vs the raw ioctl on the real kernel
 *                 (min, median and spread over repetitions, interleaved)
 *   copy          coherent-read/write helpers vs memcpy at 64 MiB, GB/s (the
 *                 whole picture: kvmnc-copy-bench)
 *
 * Links the internal static library so that it can count the system calls
 * the library makes through its seam and swap the kernel behind it; the
 * real-kernel runs make the real calls.
 *
 *   kvmnc-bench [reps]     reps of each real-kernel size (default 15)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "compat-kvm.h"
#include "internal.h"

static unsigned long nsys;

static int c_open(const char *p, int f)
{
	nsys++;
	return kvmnc_sys_real.open(p, f);
}
static int c_close(int fd)
{
	nsys++;
	return kvmnc_sys_real.close(fd);
}
static int c_ioctl(int fd, unsigned long req, unsigned long arg)
{
	nsys++;
	return kvmnc_sys_real.ioctl(fd, req, arg);
}
static int c_fcntl_getfd(int fd)
{
	nsys++;
	return kvmnc_sys_real.fcntl_getfd(fd);
}
static int c_mmap_anon(size_t len, void **out)
{
	nsys++;
	return kvmnc_sys_real.mmap_anon(len, out);
}
static int c_mmap_fd(int fd, size_t len, void **out)
{
	nsys++;
	return kvmnc_sys_real.mmap_fd(fd, len, out);
}
static int c_same_file(int a, int b)
{
	nsys++;
	return kvmnc_sys_real.same_file(a, b);
}
static int c_fd_rdev(int fd, uint64_t *rdev)
{
	nsys++;
	return kvmnc_sys_real.fd_rdev(fd, rdev);
}
static int c_munmap(void *a, size_t len)
{
	nsys++;
	return kvmnc_sys_real.munmap(a, len);
}
static ssize_t c_read_file(const char *p, char *b, size_t len)
{
	nsys += 3; /* open, read, close */
	return kvmnc_sys_real.read_file(p, b, len);
}
static int c_uname(struct utsname *u)
{
	nsys++;
	return kvmnc_sys_real.uname(u);
}
static int c_cpuid(uint32_t l, uint32_t s, uint32_t r[4])
{
	/* An instruction, not a system call. */
	return kvmnc_sys_real.cpuid(l, s, r);
}

static const struct kvmnc_sys counting = {
	.open = c_open,
	.close = c_close,
	.ioctl = c_ioctl,
	.fcntl_getfd = c_fcntl_getfd,
	.fd_rdev = c_fd_rdev,
	.same_file = c_same_file,
	.mmap_anon = c_mmap_anon,
	.mmap_fd = c_mmap_fd,
	.munmap = c_munmap,
	.read_file = c_read_file,
	.uname = c_uname,
	.cpuid = c_cpuid,
	/* The heap is not a system call. */
	.malloc = malloc,
	.calloc = calloc,
	.realloc = realloc,
};

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int kvm_fd;
static bool um2;

static int create_vm(void)
{
	int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);

	if (vm < 0) {
		perror("KVM_CREATE_VM");
		exit(2);
	}
	return vm;
}

/* What a VMM does without the library: fill the struct, issue the ioctl. */
static int raw_set(int (*ioc)(int, unsigned long, unsigned long), int vm, uint32_t slot,
		   uint64_t gpa, uint64_t size, uint64_t hva)
{
	if (um2) {
		struct kvm_userspace_memory_region2 m = {
			.slot = slot,
			.guest_phys_addr = gpa,
			.memory_size = size,
			.userspace_addr = hva,
		};
		return ioc(vm, KVM_SET_USER_MEMORY_REGION2, (unsigned long)&m);
	}
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = hva,
	};
	return ioc(vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m);
}

static int sys_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

static struct kvmnc_region slot_region(int i, char *mem, bool nc)
{
	struct kvmnc_region reg = {
		.sz = sizeof(reg),
		.slot = (uint32_t)i,
		.guest_phys_addr = (uint64_t)i * 4096,
		.memory_size = 4096,
		.userspace_addr = (uintptr_t)mem + (uint64_t)i * 4096,
		.kvmnc_flags = nc ? KVMNC_REGION_NONCOHERENT : 0,
	};
	return reg;
}

/* Seconds to register @n one-page slots on a fresh VM, raw or through the library. */
static double memslot_run(int n, char *mem, bool lib, unsigned long *calls)
{
	struct kvmnc *h = NULL;
	int vm = create_vm();
	double t0, t;

	if (lib && kvmnc_open(vm, NULL, &h) < 0) {
		fprintf(stderr, "kvmnc_open failed\n");
		exit(2);
	}
	nsys = 0;
	t0 = bench_now();
	for (int i = 0; i < n; i++) {
		int r;

		if (lib) {
			struct kvmnc_region reg = slot_region(i, mem, false);

			r = kvmnc_set_region(h, &reg);
		} else {
			r = raw_set(sys_ioctl, vm, (uint32_t)i, (uint64_t)i * 4096, 4096,
				    (uintptr_t)mem + (uint64_t)i * 4096);
		}
		if (r < 0) {
			fprintf(stderr, "slot %d: %s\n", i, strerror(-r));
			exit(2);
		}
	}
	t = bench_now() - t0;
	if (calls)
		*calls = nsys;
	kvmnc_close(h);
	close(vm);
	return t;
}

/* A kernel that takes every memslot call at once: what is left is the library. */
static int noop_ioctl(int fd, unsigned long req, unsigned long arg)
{
	(void)fd;
	(void)req;
	/* Read the struct as the kernel's copy_from_user would. */
	__asm__ volatile("" : : "r"(arg) : "memory");
	nsys++;
	return 0;
}

/* The counting seam with that ioctl (set up in main()). */
static struct kvmnc_sys noop;

struct stats {
	double min, med, max;
};

static struct stats stats_of(double *v, int n)
{
	struct stats s;

	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

/* (max - min) / median, in percent: how far one run may stray. */
static double spread(struct stats s)
{
	return (s.max - s.min) / s.med * 100;
}

#define OWN_CALLS 200000
#define OWN_REPS  11

/*
 * ns per call through the library and per bare call to the same no-op
 * kernel, over OWN_CALLS calls, min and median of OWN_REPS rounds. Slot ids
 * cycle over @nslots, so plain calls find no record and non-coherent ones
 * update the record they made in the first round.
 */
static void own_cost(struct kvmnc *h, int vm, char *mem, int nslots, bool nc, struct stats *lib,
		     struct stats *bare, unsigned long *calls)
{
	double tl[OWN_REPS], tb[OWN_REPS];

	for (int k = 0; k < OWN_REPS; k++) {
		double t;

		nsys = 0;
		t = bench_now();
		for (int i = 0; i < OWN_CALLS; i++) {
			struct kvmnc_region reg = slot_region(i % nslots, mem, nc);

			if (kvmnc_set_region(h, &reg) < 0) {
				fprintf(stderr, "no-op kernel: slot %d refused\n", i % nslots);
				exit(2);
			}
		}
		tl[k] = (bench_now() - t) / OWN_CALLS * 1e9;
		*calls = nsys;
		t = bench_now();
		for (int i = 0; i < OWN_CALLS; i++) {
			int s = i % nslots;

			raw_set(noop_ioctl, vm, (uint32_t)s, (uint64_t)s * 4096, 4096,
				(uintptr_t)mem + (uint64_t)s * 4096);
		}
		tb[k] = (bench_now() - t) / OWN_CALLS * 1e9;
	}
	*lib = stats_of(tl, OWN_REPS);
	*bare = stats_of(tb, OWN_REPS);
}

/*
 * Makes [p, p + len) a non-coherent memslot of @h the way a kernel with the
 * memslot flag would (this host may have none): the region mechanism set
 * to the flag, the memslot call to the no-op kernel.
 */
static void make_noncoherent(struct kvmnc *h, uint32_t slot, void *p, size_t len)
{
	struct kvmnc_region r = {
		.sz = sizeof(r),
		.slot = slot,
		.guest_phys_addr = (uint64_t)slot << 32,
		.memory_size = len,
		.userspace_addr = (uintptr_t)p,
		.kvmnc_flags = KVMNC_REGION_NONCOHERENT,
	};
	const struct kvmnc_sys *was = kvmnc_sys;

	kvmnc_handle_pretend_mechanism(h, KVMNC_MECH_MEMSLOT_FLAG);
	kvmnc_sys = &noop;
	if (kvmnc_set_region(h, &r) < 0) {
		fprintf(stderr, "kvmnc-bench: the non-coherent memslot could not be set up\n");
		exit(2);
	}
	kvmnc_sys = was;
}

/* The same memcpy the library calls, not one the compiler inlines here. */
static void *(*volatile memcpy_fn)(void *, const void *, size_t) = memcpy;

static double gbps(size_t bytes, double secs)
{
	return (double)bytes / secs / 1e9;
}

int main(int argc, char **argv)
{
	static const int sizes[] = {1, 10, 100, 1000, 10000};
	KVMNC_OPTS(kvmnc_features, f, .recommended = 0);
	unsigned long cold_calls, cached_calls, lib_calls = 0;
	double cold_t, cached_t;
	int reps = argc > 1 ? atoi(argv[1]) : 15;

	noop = counting;
	noop.ioctl = noop_ioctl;

	if (reps < 1)
		reps = 1;
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		fprintf(stderr, "kvmnc-bench: /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	um2 = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2) > 0;
	kvmnc_sys = &counting;

	/* Probe: the first call does the work, later ones answer from the cache. */
	nsys = 0;
	cold_t = bench_now();
	if (kvmnc_probe(NULL, &f) < 0)
		return 2;
	cold_t = bench_now() - cold_t;
	cold_calls = nsys;
	nsys = 0;
	cached_t = bench_now();
	for (int i = 0; i < 100000; i++)
		kvmnc_probe(NULL, &f);
	cached_t = (bench_now() - cached_t) / 100000;
	cached_calls = nsys / 100000;

	printf("probe: cold %lu syscalls %.1f us; cached %lu syscalls %.1f ns (%.0fx faster)\n",
	       cold_calls, cold_t * 1e6, cached_calls, cached_t * 1e9, cold_t / cached_t);

	/*
	 * The library's own cost per call, deterministic: the seam with a
	 * no-op kernel, against the same struct handed to the same no-op
	 * kernel by a bare call. Plain regions at 10,000 slot ids, and
	 * non-coherent ones as the memslot flag path records them.
	 */
	char *mem = mmap(NULL, 10000UL * 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct stats own_plain, own_nc, bare_plain, bare_nc;
	unsigned long own_calls;
	struct kvmnc *oh = NULL;
	int ovm = create_vm();

	if (kvmnc_open(ovm, NULL, &oh) < 0)
		return 2;
	kvmnc_sys = &noop;
	own_cost(oh, ovm, mem, 10000, false, &own_plain, &bare_plain, &own_calls);
	if ((double)own_calls / OWN_CALLS != 1.0)
		fprintf(stderr, "warning: %lu kernel calls for %d plain regions\n", own_calls,
			OWN_CALLS);
	/* The flag path, whatever this host has: the cost is the library's bookkeeping. */
	kvmnc_handle_pretend_mechanism(oh, KVMNC_MECH_MEMSLOT_FLAG);
	own_cost(oh, ovm, mem, 1000, true, &own_nc, &bare_nc, &own_calls);
	kvmnc_sys = &counting;
	kvmnc_close(oh);
	close(ovm);
	printf("\nlibrary's own cost per kvmnc_set_region (no-op kernel, %d calls, min / median "
	       "of %d):\n",
	       OWN_CALLS, OWN_REPS);
	printf("  plain, 10000 slot ids:          library %6.1f / %6.1f ns, bare call %5.1f / "
	       "%5.1f ns, own %5.1f ns\n",
	       own_plain.min, own_plain.med, bare_plain.min, bare_plain.med,
	       own_plain.med - bare_plain.med);
	printf("  non-coherent (flag), 1000 slots: library %6.1f / %6.1f ns, bare call %5.1f / "
	       "%5.1f ns, own %5.1f ns\n",
	       own_nc.min, own_nc.med, bare_nc.min, bare_nc.med, own_nc.med - bare_nc.med);

	/*
	 * The real kernel: raw and library runs interleaved, each on a fresh
	 * VM, alternating which goes first; min, median and spread of @reps.
	 */
	printf("\nreal kernel, %d runs each, interleaved:\n", reps);
	printf("%8s %11s %11s %8s %11s %11s %8s %8s %10s\n", "slots", "raw min ms", "raw med ms",
	       "raw spr", "lib min ms", "lib med ms", "lib spr", "ratio", "calls/slot");
	double ratio_10000 = 0, ratio_min_10000 = 0, raw_spread_10000 = 0, lib_spread_10000 = 0;
	double raw_per_slot_10000 = 0;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		double *raw = calloc((size_t)reps, sizeof(double)),
		       *lib = calloc((size_t)reps, sizeof(double));
		int n = sizes[s];
		struct stats sr, sl;

		for (int i = 0; i < reps; i++) {
			if (i % 2) {
				lib[i] = memslot_run(n, mem, true, &lib_calls);
				raw[i] = memslot_run(n, mem, false, NULL);
			} else {
				raw[i] = memslot_run(n, mem, false, NULL);
				lib[i] = memslot_run(n, mem, true, &lib_calls);
			}
		}
		sr = stats_of(raw, reps);
		sl = stats_of(lib, reps);
		if (n == 10000) {
			ratio_10000 = sl.med / sr.med;
			ratio_min_10000 = sl.min / sr.min;
			raw_spread_10000 = spread(sr);
			raw_per_slot_10000 = sr.med / n * 1e9;
			lib_spread_10000 = spread(sl);
		}
		printf("%8d %11.3f %11.3f %7.0f%% %11.3f %11.3f %7.0f%% %8.3f %10.2f\n", n,
		       sr.min * 1e3, sr.med * 1e3, spread(sr), sl.min * 1e3, sl.med * 1e3,
		       spread(sl), sl.med / sr.med, (double)lib_calls / n);
		free(raw);
		free(lib);
	}
	printf("ratio = library median / raw median; spread = (max - min) / median\n");

	/*
	 * Copies: the helpers against memcpy on the same 64 MiB buffers, src
	 * and dst non-coherent memslots of one handle, plain memory for another
	 * (kvmnc-copy-bench has the full picture: sizes, 4 KiB calls).
	 */
	size_t len = 64UL << 20;
	char *src = aligned_alloc(4096, len), *dst = aligned_alloc(4096, len);
	struct kvmnc *h = NULL, *hp = NULL;
	int vm = create_vm(), vmp = create_vm();
	double t_memcpy[16], t_from[16], t_to[16], t_plain[16];
	int k = reps > 16 ? 16 : reps;

	memset(src, 1, len);
	memset(dst, 2, len);
	if (kvmnc_open(vm, NULL, &h) < 0 || kvmnc_open(vmp, NULL, &hp) < 0)
		return 2;
	make_noncoherent(h, 0, src, len);
	make_noncoherent(h, 1, dst, len);
	for (int i = 0; i < k; i++) {
		double t;

		/* Warm both buffers the same way before each measured copy. */
		memcpy(dst, src, len);
		t = bench_now();
		memcpy_fn(dst, src, len);
		t_memcpy[i] = bench_now() - t;
		t = bench_now();
		kvmnc_copy_from_guest(hp, dst, src, len);
		t_plain[i] = bench_now() - t;
		t = bench_now();
		kvmnc_copy_from_guest(h, dst, src, len);
		t_from[i] = bench_now() - t;
		t = bench_now();
		kvmnc_copy_to_guest(h, dst, src, len);
		t_to[i] = bench_now() - t;
	}
	kvmnc_close(h);
	kvmnc_close(hp);
	close(vm);
	close(vmp);
	double m_memcpy = median(t_memcpy, k), m_from = median(t_from, k), m_to = median(t_to, k),
	       m_plain = median(t_plain, k);

	printf("\ncopy 64 MiB: memcpy %.2f GB/s; copy_from_guest coherent %.2f GB/s; "
	       "non-coherent: copy_from_guest %.2f GB/s, copy_to_guest %.2f GB/s\n",
	       gbps(len, m_memcpy), gbps(len, m_plain), gbps(len, m_from), gbps(len, m_to));

	printf("\nprobe_cold_syscalls=%lu\n", cold_calls);
	printf("probe_cached_syscalls=%lu\n", cached_calls);
	printf("probe_cold_us=%.1f\n", cold_t * 1e6);
	printf("probe_cached_ns=%.1f\n", cached_t * 1e9);
	printf("memslot_lib_syscalls_per_slot=%.2f\n", (double)lib_calls / 10000);
	printf("memslot_extra_syscalls_per_slot=%.2f\n", (double)lib_calls / 10000 - 1);
	printf("memslot_ratio_10000=%.3f\n", ratio_10000);
	printf("memslot_ratio_min_10000=%.3f\n", ratio_min_10000);
	printf("memslot_raw_spread_10000_pct=%.0f\n", raw_spread_10000);
	printf("memslot_lib_spread_10000_pct=%.0f\n", lib_spread_10000);
	printf("memslot_own_ns_plain=%.1f\n", own_plain.med - bare_plain.med);
	printf("memslot_own_ns_noncoherent=%.1f\n", own_nc.med - bare_nc.med);
	printf("memslot_lib_ns_plain=%.1f\n", own_plain.med);
	printf("memslot_bare_ns=%.1f\n", bare_plain.med);
	/* The deterministic bound: the library's own cost over what the kernel takes per slot. */
	printf("memslot_own_share_10000=%.4f\n",
	       raw_per_slot_10000 > 0 ? (own_plain.med - bare_plain.med) / raw_per_slot_10000 : 0);
	printf("memcpy_gbps=%.2f\n", gbps(len, m_memcpy));
	printf("copy_coherent_ratio=%.3f\n", m_plain / m_memcpy);
	printf("copy_from_noncoherent_gbps=%.2f\n", gbps(len, m_from));
	printf("copy_to_noncoherent_gbps=%.2f\n", gbps(len, m_to));
	printf("copy_from_noncoherent_ratio=%.3f\n", m_from / m_memcpy);
	printf("copy_to_noncoherent_ratio=%.3f\n", m_to / m_memcpy);
	free(src);
	free(dst);
	munmap(mem, 10000UL * 4096);
	close(kvm_fd);
	return 0;
}
