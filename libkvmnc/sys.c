// SPDX-License-Identifier: LGPL-2.1-or-later
/* The real system calls behind the seam in internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "internal.h"

static int sys_open(const char *path, int flags)
{
	int fd;

	do
		fd = open(path, flags | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

/* Never retried: Linux releases the fd even when close() says EINTR. */
static int sys_close(int fd)
{
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

/*
 * KVM's ioctls that can see EINTR have not taken effect when they return it,
 * so retrying is right.
 */
static int sys_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int sys_fcntl_getfd(int fd)
{
	int r = fcntl(fd, F_GETFD);

	return r < 0 ? -errno : r;
}

static int sys_same_file(int a, int b)
{
#ifdef SYS_kcmp
	long r = syscall(SYS_kcmp, (long)getpid(), (long)getpid(), 0 /* KCMP_FILE */, (long)a,
			 (long)b);

	if (r < 0)
		return -errno;
	return r == 0 ? 0 : 1;
#else
	(void)a;
	(void)b;
	return -ENOSYS;
#endif
}

static int sys_fd_rdev(int fd, uint64_t *rdev)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode))
		return -ENOTTY;
	*rdev = st.st_rdev;
	return 0;
}

static int sys_mmap_anon(size_t len, void **out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int sys_mmap_fd(int fd, size_t len, void **out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int sys_munmap(void *addr, size_t len)
{
	return munmap(addr, len) < 0 ? -errno : 0;
}

/* Short reads (proc and sysfs files hand out a record at a time) are continued. */
static ssize_t sys_read_file(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int fd;

	if (len == 0)
		return -EINVAL;
	fd = sys_open(path, O_RDONLY);
	if (fd < 0)
		return fd;
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

static int sys_uname(struct utsname *u)
{
	return uname(u) < 0 ? -errno : 0;
}

static int sys_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(leaf, subleaf, &a, &b, &c, &d))
		return -EOPNOTSUPP;
	regs[0] = a;
	regs[1] = b;
	regs[2] = c;
	regs[3] = d;
	return 0;
#else
	(void)leaf;
	(void)subleaf;
	(void)regs;
	return -EOPNOTSUPP;
#endif
}

char *kvmnc_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = SYS(malloc, n);

	return d ? memcpy(d, s, n) : NULL;
}

const struct kvmnc_sys kvmnc_sys_real = {
	.open = sys_open,
	.close = sys_close,
	.ioctl = sys_ioctl,
	.fcntl_getfd = sys_fcntl_getfd,
	.fd_rdev = sys_fd_rdev,
	.same_file = sys_same_file,
	.mmap_anon = sys_mmap_anon,
	.mmap_fd = sys_mmap_fd,
	.munmap = sys_munmap,
	.read_file = sys_read_file,
	.uname = sys_uname,
	.cpuid = sys_cpuid,
	.malloc = malloc,
	.calloc = calloc,
	.realloc = realloc,
};

const struct kvmnc_sys *kvmnc_sys = &kvmnc_sys_real;
