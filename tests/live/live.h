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
#include <sys/mman.h>
#include <unistd.h>

#include <kvmnc.h>

#include "../../libkvmnc/compat-kvm.h"

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

/* A memslot of @len bytes at @gpa backed by @hva, non-coherent or not. */
static inline struct kvmnc_region t_region(uint32_t slot, uint64_t gpa, uint64_t len,
					   const void *hva, bool nc)
{
	struct kvmnc_region r = {
		.sz = sizeof(r),
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = len,
		.userspace_addr = (uintptr_t)hva,
		.kvmnc_flags = nc ? KVMNC_REGION_NONCOHERENT : 0,
	};
	return r;
}

/* @r with @flags through the VMM's own memslot ioctl, v2 where the kernel has it. */
static inline int t_raw_region(int vm, const struct kvmnc_region *r, uint32_t flags)
{
	struct kvm_userspace_memory_region2 m = {
		.slot = r->slot,
		.flags = flags,
		.guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
	};
	int r2 = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2) > 0, ret;

	if (r2) {
		ret = ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m);
	} else {
		struct kvm_userspace_memory_region m1 = {
			.slot = m.slot,
			.flags = m.flags,
			.guest_phys_addr = m.guest_phys_addr,
			.memory_size = m.memory_size,
			.userspace_addr = m.userspace_addr,
		};
		ret = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m1);
	}
	return ret < 0 ? -errno : 0;
}

/*
 * Runs a vCPU of @vm in real mode from @rip (CS base 0) until its first
 * exit: the exit reason, or -1 when the vCPU could not be set up.
 */
static inline int t_run_guest(int kvm, int vm, uint64_t rip)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = rip, .rflags = 2};
	struct kvm_run *run;
	int vcpu, size, r = -1;

	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || size <= 0)
		return -1;
	run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run != MAP_FAILED) {
		if (ioctl(vcpu, KVM_GET_SREGS, &sregs) == 0) {
			sregs.cs.base = 0;
			sregs.cs.selector = 0;
			if (ioctl(vcpu, KVM_SET_SREGS, &sregs) == 0 &&
			    ioctl(vcpu, KVM_SET_REGS, &regs) == 0 && ioctl(vcpu, KVM_RUN, 0) == 0)
				r = (int)run->exit_reason;
		}
		munmap(run, (size_t)size);
	}
	close(vcpu);
	return r;
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
 * Per-kernel truth, for the kernel tier: the one table of what each kernel
 * personality must answer. live-probe checks the library's probe against
 * it, live-memtype which mechanisms it must find, the tier's kvm-smoke
 * (tests/kernel/guest, raw ioctls, no library) the raw kernel facts, and the
 * tier's runner (tests/kernel/run-qemu.py, which parses this initializer)
 * kvmnc-probe --json. KVMNC_EXPECT names the row. Without KVMNC_EXPECT a
 * host with no VMX and no SVM flag in /proc/cpuinfo (shadow paging or PVM)
 * can honor guest PAT by no means, so it must come out as "nothing usable".
 *
 * The contract with the kernel series: the VIRTIO device and the memslot
 * flag exist exactly where guest PAT can be honored safely (EPT with
 * self-snoop, or NPT); without EPT/NPT or without self-snoop,
 * KVM_CREATE_DEVICE of type 32 gives ENODEV, cap 239 is 0 and the flag
 * EINVAL. The quirk's bit 9 is listed wherever TDP is on and, on Intel,
 * the CPU self-snoops.
 */
struct t_expect {
	const char *name;
	/* The library's probe: 1 supported, 0 not. */
	int native, flag, device, quirk;
	int recommended;
	/* Raw facts (kvm-smoke): the active KVM vendor module, NULL: any. */
	const char *module;
	/* EPT/NPT in use, KVM_CAP_DISABLE_QUIRKS2 lists bit 9, CPU self-snoop; -1: any. */
	int tdp, quirk_bit, self_snoop;
};

#define T_ANY (-1)

static const struct t_expect t_expectations[] = {
	/* name, native, flag, device, quirk, recommended, module, tdp, quirk_bit, self_snoop */
	{"nohw", 0, 0, 0, 0, KVMNC_MECH_NONE, NULL, T_ANY, T_ANY, T_ANY},
	/* QEMU TCG, AMD SVM */
	{"stock-npt", 1, 0, 0, 0, KVMNC_MECH_NATIVE, "kvm_amd", 1, 1, T_ANY},
	{"patched-npt", 1, 1, 1, 0, KVMNC_MECH_NATIVE, "kvm_amd", 1, 1, T_ANY},
	{"patched-shadow", 0, 0, 0, 0, KVMNC_MECH_NONE, "kvm_amd", 0, 0, T_ANY},
	/* Debian's own 6.1 and 7.2 kernels (stock-* is Debian's 6.12): 6.1 has no
	 * IGNORE_GUEST_PAT quirk at all; 7.2 lists it on AMD too (supported,
	 * but inapplicable: already disabled at VM creation). */
	{"debian-6.1-npt", 1, 0, 0, 0, KVMNC_MECH_NATIVE, "kvm_amd", 1, 0, T_ANY},
	{"debian-7.2-npt", 1, 0, 0, 0, KVMNC_MECH_NATIVE, "kvm_amd", 1, 1, T_ANY},
	/* Bochs, Intel VMX */
	{"stock-vmx", 0, 0, 0, 1, KVMNC_MECH_GUEST_PAT_QUIRK, "kvm_intel", 1, 1, 1},
	{"patched-vmx", 0, 1, 1, 1, KVMNC_MECH_MEMSLOT_FLAG, "kvm_intel", 1, 1, 1},
	{"patched-vmx-nosnoop", 0, 0, 0, 0, KVMNC_MECH_NONE, "kvm_intel", 1, 0, 0},
	{"patched-vmx-shadow", 0, 0, 0, 0, KVMNC_MECH_NONE, "kvm_intel", 0, 0, 1},
	{"debian-6.1-vmx", 0, 0, 0, 0, KVMNC_MECH_NONE, "kvm_intel", 1, 0, 1},
	{"debian-7.2-vmx", 0, 0, 0, 1, KVMNC_MECH_GUEST_PAT_QUIRK, "kvm_intel", 1, 1, 1},
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
