// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Fault injection on the real kernel: every system call the library makes,
 * failing in turn with each plausible errno, through a wrapper around the
 * real seam. Counts /proc/self/fd before and after: no fd may leak, and the
 * operation either fails with the injected errno's consequence or succeeds
 * where the failed call was best effort.
 */
#include <dirent.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"
#include "live.h"

static const int errs[] = {EINTR, EAGAIN, ENOMEM, EBADF, ENOTTY, EPERM, EEXIST, EINVAL, EMFILE};
static int calls, fail_at, fail_err;

static int inject(void)
{
	return ++calls == fail_at ? -fail_err : 0;
}

/* A failed open/ioctl that would have created an fd must not leave one. */
static int w_open(const char *p, int f)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.open(p, f);
}
static int w_close(int fd)
{
	int r = inject();

	/* The fd is released whatever close() reports, as on Linux. */
	kvmnc_sys_real.close(fd);
	return r;
}
static int w_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.ioctl(fd, req, arg);
}
static int w_fcntl_getfd(int fd)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.fcntl_getfd(fd);
}
static int w_mmap_anon(size_t len, void **out)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.mmap_anon(len, out);
}
static int w_munmap(void *a, size_t len)
{
	int r = inject();

	kvmnc_sys_real.munmap(a, len);
	return r;
}
static int w_mmap_fd(int fd, size_t len, void **out)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.mmap_fd(fd, len, out);
}
static int w_same_file(int a, int b)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.same_file(a, b);
}
static int w_fd_rdev(int fd, uint64_t *rdev)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.fd_rdev(fd, rdev);
}
static ssize_t w_read_file(const char *p, char *b, size_t len)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.read_file(p, b, len);
}
static int w_uname(struct utsname *u)
{
	int r = inject();

	return r ? r : kvmnc_sys_real.uname(u);
}
static int w_cpuid(uint32_t l, uint32_t s, uint32_t regs[4])
{
	int r = inject();

	return r ? r : kvmnc_sys_real.cpuid(l, s, regs);
}

static const struct kvmnc_sys wrapped = {
	.open = w_open,
	.close = w_close,
	.ioctl = w_ioctl,
	.fcntl_getfd = w_fcntl_getfd,
	.fd_rdev = w_fd_rdev,
	.same_file = w_same_file,
	.mmap_anon = w_mmap_anon,
	.mmap_fd = w_mmap_fd,
	.munmap = w_munmap,
	.read_file = w_read_file,
	.uname = w_uname,
	.cpuid = w_cpuid,
	/* System calls only: the unit tests fail the allocations. */
	.malloc = malloc,
	.calloc = calloc,
	.realloc = realloc,
};

static int proc_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return t_count_fds();
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static int vm;
static void *page;

static int op_probe(void)
{
	struct kvmnc_features f = {.sz = sizeof(f)};

	kvmnc_probe_reset();
	return kvmnc_probe(NULL, &f);
}

static int op_open_close(void)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE);
	struct kvmnc *h = NULL;
	int r;

	/* Cold, so that the probe inside open is under fault too. */
	kvmnc_probe_reset();
	r = kvmnc_open(vm, &o, &h);
	if (r == 0)
		kvmnc_close(h);
	return r;
}

static int op_region(void)
{
	struct kvmnc_region reg = {
		.sz = sizeof(reg),
		.slot = 3,
		.guest_phys_addr = 0x100000,
		.memory_size = 4096,
		.userspace_addr = (uintptr_t)page,
	};
	struct kvmnc *h = NULL;
	int r;

	kvmnc_sys = &kvmnc_sys_real;
	if (kvmnc_open(vm, NULL, &h) < 0)
		return -EIO;
	kvmnc_sys = &wrapped;
	r = kvmnc_set_region(h, &reg);
	kvmnc_sys = &kvmnc_sys_real;
	if (r == 0) {
		reg.memory_size = 0;
		kvmnc_set_region(h, &reg);
	}
	kvmnc_close(h);
	return r;
}

static void run(const char *name, int (*op)(void), int *cases)
{
	int total, fds = proc_fds();

	kvmnc_sys = &wrapped;
	calls = 0;
	fail_at = 0;
	T_EQ(op(), 0, name);
	total = calls;
	for (int n = 1; n <= total; n++) {
		for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
			int r;

			kvmnc_sys = &wrapped;
			calls = 0;
			fail_at = n;
			fail_err = errs[e];
			r = op();
			kvmnc_sys = &kvmnc_sys_real;
			(*cases)++;
			if (r > 0 || proc_fds() != fds)
				t_check(false,
					"%s: call %d failing with %s: returned %d, fds %d -> %d",
					name, n, strerror(errs[e]), r, fds, proc_fds());
		}
	}
	t_check(proc_fds() == fds, "%s: %d calls x %zu errnos, no fd leaked", name, total,
		sizeof(errs) / sizeof(errs[0]));
	kvmnc_sys = &kvmnc_sys_real;
}

/*
 * Issue 19, bug 4: the access trial that tells KVM_MEM_NON_COHERENT_DMA from
 * another meaning of bit 3 runs a real vCPU. Here, with a plain data slot
 * (no kernel on hand gives bit 3 a meaning), the access must complete: the
 * real-mode code, the registers and the exit are right on this kernel.
 */
static void access_run(int kvm)
{
	static const unsigned char code[] = {0xa0, 0x00, 0x10, 0xf4}; /* mov al, [0x1000]; hlt */
	struct kvmnc_region c = {.sz = sizeof(c), .memory_size = 4096};
	struct kvmnc_region d = {
		.sz = sizeof(d), .slot = 1, .guest_phys_addr = 0x1000, .memory_size = 4096};
	int svm = ioctl(kvm, KVM_CREATE_VM, 0), r;
	void *cp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *dp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	memcpy(cp, code, sizeof(code));
	c.userspace_addr = (uintptr_t)cp;
	d.userspace_addr = (uintptr_t)dp;
	T_EQ(kvmnc_kvm_set_region(svm, false, &c, 0), 0, "access trial: code slot at GPA 0");
	T_EQ(kvmnc_kvm_set_region(svm, false, &d, 0), 0, "access trial: data slot at 0x1000");
	r = kvmnc_kvm_access_run(kvm, svm, 0, 0x1000);
	if (r == -EINVAL || r == -ENOTSUP)
		printf("# this KVM runs no real-mode vCPU (%s): the probe says \"could not "
		       "tell\" for an uncapped bit 3 here\n",
		       strerror(-r));
	else
		T_EQ(r, KVM_EXIT_HLT, "access trial: the guest's read completes and it halts");
	munmap(cp, 4096);
	munmap(dp, 4096);
	close(svm);
}

int main(void)
{
	int kvm = t_kvm_fd(), cases = 0;

	access_run(kvm);
	vm = t_create_vm(kvm);
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	run("probe", op_probe, &cases);
	run("open+close", op_open_close, &cases);
	run("set_region", op_region, &cases);
	printf("# %d fault cases on the real kernel\n", cases);
	close(vm);
	close(kvm);
	return t_done();
}
