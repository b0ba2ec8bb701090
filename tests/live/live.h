/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers for the live tests, which run against a real /dev/kvm: TAP output,
 * skipping with exit 77 and a reason, and the per-kernel expectations the
 * kernel tier selects with KVMNC_EXPECT.
 */
#ifndef KVMNC_LIVE_H
#define KVMNC_LIVE_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <kvmnc.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

static int t_num, t_failed;

static inline void t_check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void t_check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++t_num);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		t_failed++;
}

#define T_EQ(got, want, what)                                                                      \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		t_check(g_ == w_, "%s (got %lld, want %lld)", what, g_, w_);                       \
	} while (0)

static inline int t_done(void)
{
	printf("1..%d\n", t_num);
	return t_failed ? T_EXIT_FAIL : T_EXIT_PASS;
}

/*
 * Skip with the reason: exit 77, as the kernel tier and automake-style
 * harnesses read it. Meson's TAP protocol takes the skip from the "1..0 #
 * SKIP" plan and calls any non-zero exit an error, so tests/live/meson.build
 * sets KVMNC_SKIP_EXIT=0.
 */
static inline __attribute__((noreturn)) void t_skip(const char *why)
{
	const char *status = getenv("KVMNC_SKIP_EXIT");

	fprintf(stderr, "SKIP: %s\n", why);
	printf("1..0 # SKIP %s\n", why);
	exit(status && !strcmp(status, "0") ? T_EXIT_PASS : T_EXIT_SKIP);
}

/* /dev/kvm, or skip: a host without KVM or permission is not a failure. */
static inline int t_kvm_fd(void)
{
	const char *dev = getenv("KVMNC_DEVICE") ? getenv("KVMNC_DEVICE") : "/dev/kvm";
	static char why[256];
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, sizeof(why), "%s: %s (needs a KVM host and permission)", dev,
			 strerror(errno));
		t_skip(why);
	}
	return fd;
}

static inline int t_create_vm(int kvm)
{
	int vm = ioctl(kvm, _IO(0xAE, 0x01), 0); /* KVM_CREATE_VM */

	if (vm < 0) {
		fprintf(stderr, "KVM_CREATE_VM: %s\n", strerror(errno));
		exit(T_EXIT_FAIL);
	}
	return vm;
}

/* Open fds of this process, to prove the library leaves none behind. */
static inline int t_count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/*
 * Per-kernel truth, for the kernel tier. Without KVMNC_EXPECT a host with no
 * VMX and no SVM flag in /proc/cpuinfo (shadow paging or PVM) can honor
 * guest PAT by no means, so it must come out as "nothing usable".
 */
struct t_expect {
	const char *name;
	int native, flag, device, quirk;
	int recommended;
};

static const struct t_expect t_expectations[] = {
	{"nohw", 0, 0, 0, 0, KVMNC_MECH_NONE},
	{"stock-npt", 1, 0, 0, 0, KVMNC_MECH_NATIVE},
	{"patched-npt", 1, 1, 1, 0, KVMNC_MECH_NATIVE},
	{"patched-shadow", 0, 0, 1, 0, KVMNC_MECH_VIRTIO_DEVICE},
};

static inline bool t_cpu_has_hw_virt(void)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return true; /* cannot tell: claim nothing */
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5))
			found = strstr(line, " vmx") || strstr(line, " svm");
	fclose(f);
	return found;
}

static inline const struct t_expect *t_expect(void)
{
	const char *want = getenv("KVMNC_EXPECT");

	if (!want || !*want)
		want = t_cpu_has_hw_virt() ? NULL : "nohw";
	if (!want)
		return NULL;
	for (size_t i = 0; i < sizeof(t_expectations) / sizeof(t_expectations[0]); i++)
		if (!strcmp(t_expectations[i].name, want))
			return &t_expectations[i];
	fprintf(stderr, "unknown KVMNC_EXPECT=%s\n", want);
	exit(T_EXIT_FAIL);
}

#endif
