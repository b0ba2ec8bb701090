// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * seccomp-victim: makes one system call that run-filtered's filter must
 * refuse, or (with "allowed") only calls it must let through. Run under
 * run-filtered it proves the filter is real: each refused call must kill it
 * with SIGSYS (or, under --errno, fail with EPERM: exit status 3).
 *
 * Exit status: 0 the call succeeded (or "allowed" ran through), 3 it failed
 * with EPERM, 4 it failed otherwise, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat-kvm.h"

static int verdict(long r)
{
	if (r >= 0)
		return 0;
	return errno == EPERM ? 3 : 4;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	int fd;

	if (!strcmp(what, "allowed")) {
		/* What the library does, on /dev/null: refused by the driver, not the filter. */
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return 4;
		if (fcntl(fd, F_GETFD) < 0)
			return 4;
		if (ioctl(fd, KVM_GET_API_VERSION, 0) >= 0 || errno != ENOTTY)
			return 4;
		if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) >= 0 || errno != ENOTTY)
			return 4;
		close(fd);
		printf("allowed calls went through\n");
		return 0;
	}
	if (!strcmp(what, "getpid"))
		return verdict(syscall(SYS_getpid));
	if (!strcmp(what, "socket"))
		return verdict(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!strcmp(what, "open-no-cloexec"))
		return verdict(open("/dev/null", O_RDONLY));
	if (!strcmp(what, "fcntl-setfd"))
		return verdict(fcntl(1, F_SETFD, FD_CLOEXEC));
	if (!strcmp(what, "ioctl-other"))
		/* FIONREAD: a harmless request that is not in the list. */
		return verdict(ioctl(0, FIONREAD, &fd));
	if (!strcmp(what, "ioctl-high-bits"))
		/*
		 * The kernel truncates the request to 32 bits, so this would be
		 * KVM_CREATE_VM on fd 0: the filter must look at all 64.
		 */
		return verdict(syscall(SYS_ioctl, 0, (1UL << 32) | KVM_CREATE_VM, 0UL));
	if (!strcmp(what, "execve")) {
		char *args[] = {argv[0], NULL};

		return verdict(execve(argv[0], args, NULL));
	}
	fprintf(stderr, "usage: seccomp-victim allowed|getpid|socket|open-no-cloexec|fcntl-setfd|"
			"ioctl-other|ioctl-high-bits|execve\n");
	return 2;
}
