// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kvmnc-bench: the library against the raw kernel interface, side by side
 * in one run, on the real /dev/kvm. Prints a table and key=value lines.
 *
 *   probe         cold (first) vs cached probe: system calls and time
 *   memslot       N slots through kvmnc_set_region vs the raw ioctl
 *   copy          coherent-read/write helpers vs memcpy, GB/s
 *
 * Links the static library so that it can count the system calls the
 * library makes through its seam; the calls themselves are the real ones.
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
	c_open,	  c_close,     c_ioctl, c_fcntl_getfd, c_mmap_anon,
	c_munmap, c_read_file, c_uname, c_cpuid,
};

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

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
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

static int raw_set(int vm, uint32_t slot, uint64_t gpa, uint64_t size, uint64_t hva)
{
	if (um2) {
		struct kvm_userspace_memory_region2 m = {
			.slot = slot,
			.guest_phys_addr = gpa,
			.memory_size = size,
			.userspace_addr = hva,
		};
		return ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m);
	}
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = hva,
	};
	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m);
}

/* Seconds to register @n one-page slots, raw or through the library. */
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
	t0 = now();
	for (int i = 0; i < n; i++) {
		uint64_t gpa = (uint64_t)i * 4096, hva = (uintptr_t)mem + (uint64_t)i * 4096;
		int r;

		if (lib) {
			struct kvmnc_region reg = {
				.sz = sizeof(reg),
				.slot = (uint32_t)i,
				.guest_phys_addr = gpa,
				.memory_size = 4096,
				.userspace_addr = hva,
			};
			r = kvmnc_set_region(h, &reg);
		} else {
			r = raw_set(vm, (uint32_t)i, gpa, 4096, hva);
		}
		if (r < 0) {
			fprintf(stderr, "slot %d: %s\n", i, strerror(lib ? -r : errno));
			exit(2);
		}
	}
	t = now() - t0;
	if (calls)
		*calls = nsys;
	kvmnc_close(h);
	close(vm);
	return t;
}

static double gbps(size_t bytes, double secs)
{
	return (double)bytes / secs / 1e9;
}

int main(int argc, char **argv)
{
	static const int sizes[] = {1, 10, 100, 1000, 10000};
	KVMNC_OPTS(kvmnc_features, f, .recommended = 0);
	unsigned long cold_calls, cached_calls, lib_calls = 0;
	double cold_t, cached_t, ratio_10000 = 0;
	int reps = argc > 1 ? atoi(argv[1]) : 5;

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
	cold_t = now();
	if (kvmnc_probe(NULL, &f) < 0)
		return 2;
	cold_t = now() - cold_t;
	cold_calls = nsys;
	nsys = 0;
	cached_t = now();
	for (int i = 0; i < 100000; i++)
		kvmnc_probe(NULL, &f);
	cached_t = (now() - cached_t) / 100000;
	cached_calls = nsys / 100000;

	printf("probe: cold %lu syscalls %.1f us; cached %lu syscalls %.1f ns (%.0fx faster)\n",
	       cold_calls, cold_t * 1e6, cached_calls, cached_t * 1e9, cold_t / cached_t);

	/* Memslots: raw and library runs interleaved, median of @reps each. */
	char *mem = mmap(NULL, 10000UL * 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	printf("\n%8s %12s %12s %8s %14s\n", "slots", "raw ms", "libkvmnc ms", "ratio",
	       "lib calls/slot");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		double raw[32], lib[32], ratio;
		int n = sizes[s], k = reps > 32 ? 32 : reps;

		/* Alternate which goes first, so neither always pays for a cold start. */
		for (int i = 0; i < k; i++) {
			if (i % 2) {
				lib[i] = memslot_run(n, mem, true, &lib_calls);
				raw[i] = memslot_run(n, mem, false, NULL);
			} else {
				raw[i] = memslot_run(n, mem, false, NULL);
				lib[i] = memslot_run(n, mem, true, &lib_calls);
			}
		}
		double mr = median(raw, k), ml = median(lib, k);

		ratio = ml / mr;
		if (n == 10000)
			ratio_10000 = ratio;
		printf("%8d %12.3f %12.3f %8.3f %14.2f\n", n, mr * 1e3, ml * 1e3, ratio,
		       (double)lib_calls / n);
	}

	/*
	 * Copies: the helpers against memcpy on the same 64 MiB buffer. The
	 * flushing path is what a VM with a VM-wide mechanism in force takes;
	 * this host may have none, so the bench sets that state by hand.
	 */
	size_t len = 64UL << 20;
	char *src = malloc(len), *dst = malloc(len);
	struct kvmnc *h = NULL;
	int vm = create_vm();
	double t_memcpy[16], t_from[16], t_to[16], t_plain[16];
	int k = reps > 16 ? 16 : reps;

	memset(src, 1, len);
	memset(dst, 2, len);
	kvmnc_open(vm, NULL, &h);
	for (int i = 0; i < k; i++) {
		double t;

		/* Warm both buffers the same way before each measured copy. */
		memcpy(dst, src, len);
		t = now();
		memcpy(dst, src, len);
		t_memcpy[i] = now() - t;
		h->quirk_disabled = false;
		t = now();
		kvmnc_copy_from_guest(h, dst, src, len);
		t_plain[i] = now() - t;
		h->quirk_disabled = true;
		t = now();
		kvmnc_copy_from_guest(h, dst, src, len);
		t_from[i] = now() - t;
		t = now();
		kvmnc_copy_to_guest(h, dst, src, len);
		t_to[i] = now() - t;
	}
	h->quirk_disabled = false;
	kvmnc_close(h);
	close(vm);
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
	printf("memslot_ratio_10000=%.3f\n", ratio_10000);
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
