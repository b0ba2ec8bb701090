// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kvm-smoke: the kernel tier's own guest-side check, independent of
 * libkvmnc.  It talks to /dev/kvm with raw ioctls and asserts what the
 * series (patches/) must and must not change, per kernel personality:
 *
 *   KVMNC_EXPECT=stock-npt       stock 6.12, AMD NPT guest (-cpu EPYC)
 *   KVMNC_EXPECT=patched-npt     patched 6.12, AMD NPT guest
 *   KVMNC_EXPECT=patched-shadow  patched 6.12, shadow paging (-cpu qemu64,+svm)
 *
 * Without KVMNC_EXPECT it only prints what it observes.  Output is TAP;
 * exit 0 pass, 1 fail, 77 skip (no /dev/kvm).
 *
 * Debian 12's linux-libc-dev is 6.1: what is newer comes from
 * libkvmnc/compat-kvm.h (see below).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * The numbers shared with the series and the newer upstream ABI come from
 * the library's compat header (header only: no library code is linked), so
 * that one place holds them and tests/check-uapi-numbers.py checks it.
 */
#include "compat-kvm.h"

enum expect { EXPECT_NONE, STOCK_NPT, PATCHED_NPT, PATCHED_SHADOW };

static int test_no;
static int failures;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++test_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		failures++;
}

static void info(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static const char *errname(int rc, int err)
{
	static char buf[64];

	if (rc >= 0)
		snprintf(buf, sizeof(buf), "rc=%d", rc);
	else
		snprintf(buf, sizeof(buf), "errno=%d (%s)", err, strerror(err));
	return buf;
}

/* Reads Y/N (or 1/0) from a module parameter; -1 when absent. */
static int read_bool_param(const char *path)
{
	char c = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c == 'Y' || c == 'y' || c == '1';
}

static int set_slot2(int vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		     void *mem, uint64_t size, int *err)
{
	struct kvm_userspace_memory_region2 r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.slot = slot;
	r.flags = flags;
	r.guest_phys_addr = gpa;
	r.memory_size = size;
	r.userspace_addr = (uintptr_t)mem;
	rc = ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &r);
	*err = errno;
	return rc;
}

static int set_slot1(int vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		     void *mem, uint64_t size, int *err)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)mem,
	};
	int rc = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);

	*err = errno;
	return rc;
}

int main(void)
{
	const char *e = getenv("KVMNC_EXPECT");
	enum expect ex = EXPECT_NONE;
	int kvm, vm, rc, err, npt, registered, cap, flag_ok;
	const size_t sz = 2 << 20;
	void *mem;
	long mask;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (e && !strcmp(e, "stock-npt"))
		ex = STOCK_NPT;
	else if (e && !strcmp(e, "patched-npt"))
		ex = PATCHED_NPT;
	else if (e && !strcmp(e, "patched-shadow"))
		ex = PATCHED_SHADOW;
	else if (e && *e) {
		fprintf(stderr, "kvm-smoke: unknown KVMNC_EXPECT=%s\n", e);
		return 2;
	}

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "kvm-smoke: skip: cannot open /dev/kvm: %s\n",
			strerror(errno));
		printf("1..0 # SKIP no /dev/kvm\n");
		return 77;
	}
	info("KVMNC_EXPECT=%s", e && *e ? e : "(none: observe only)");
	check(ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION,
	      "KVM_GET_API_VERSION is %d", KVM_API_VERSION);

	npt = read_bool_param("/sys/module/kvm_amd/parameters/npt");
	info("kvm_amd.npt=%d (1 nested paging, 0 shadow paging, -1 no kvm_amd)",
	     npt);
	if (ex == STOCK_NPT || ex == PATCHED_NPT)
		check(npt == 1, "guest KVM uses nested paging (kvm_amd.npt=Y)");
	else if (ex == PATCHED_SHADOW)
		check(npt == 0, "guest KVM uses shadow paging (kvm_amd.npt=N)");

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	check(vm >= 0, "KVM_CREATE_VM %s", errname(vm, errno));
	if (vm < 0)
		goto out;

	cap = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2);
	check(cap > 0, "KVM_CAP_USER_MEMORY2 (231) present: %d", cap);
	mask = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2);
	info("KVM_CAP_DISABLE_QUIRKS2 mask=%#lx, IGNORE_GUEST_PAT bit 9 %s",
	     mask, (mask > 0 && (mask & KVMNC_QUIRK_IGNORE_GUEST_PAT)) ?
			   "present" : "absent");

	/* 1. The virtio device type. */
	{
		struct kvm_create_device cd = {
			.type = KVM_DEV_TYPE_VIRTIO,
			.flags = KVM_CREATE_DEVICE_TEST,
		};

		rc = ioctl(vm, KVM_CREATE_DEVICE, &cd);
		err = errno;
		registered = rc == 0;
		info("KVM_CREATE_DEVICE_TEST type %d: %s -> %s",
		     KVM_DEV_TYPE_VIRTIO, errname(rc, err),
		     registered ? "registered" : "not registered");
		if (ex == STOCK_NPT)
			check(rc < 0 && err == ENODEV,
			      "stock: device type 32 unregistered (ENODEV), got %s",
			      errname(rc, err));
		else if (ex == PATCHED_NPT || ex == PATCHED_SHADOW)
			check(registered,
			      "patched: device type 32 registered, got %s",
			      errname(rc, err));
	}
	if (registered) {
		struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VIRTIO };
		struct kvm_device_attr a = {
			.group = KVM_DEV_VIRTIO_NONCOHERENT,
			.attr = KVM_DEV_VIRTIO_NONCOHERENT_SET,
		};

		rc = ioctl(vm, KVM_CREATE_DEVICE, &cd);
		check(rc == 0 && (int)cd.fd >= 0, "virtio device created: %s",
		      errname(rc, errno));
		if (rc == 0) {
			rc = ioctl(cd.fd, KVM_HAS_DEVICE_ATTR, &a);
			check(rc == 0,
			      "device has attr group 1 / attr 1: %s",
			      errname(rc, errno));
			rc = ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &a);
			check(rc == 0, "set NONCOHERENT: %s",
			      errname(rc, errno));
			rc = ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &a);
			check(rc == 0, "set NONCOHERENT again (idempotent): %s",
			      errname(rc, errno));
			a.attr = 99;
			rc = ioctl(cd.fd, KVM_HAS_DEVICE_ATTR, &a);
			check(rc < 0, "unknown attr refused: %s",
			      errname(rc, errno));
			close(cd.fd);
		}
	}

	/* 2. The capability. */
	cap = ioctl(vm, KVM_CHECK_EXTENSION,
		    KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA);
	info("KVM_CHECK_EXTENSION(239) = %d", cap);
	if (ex == STOCK_NPT)
		check(cap == 0, "stock: cap 239 is 0, got %d", cap);
	else if (ex == PATCHED_NPT)
		check(cap == 1, "patched on NPT: cap 239 is 1, got %d", cap);
	else if (ex == PATCHED_SHADOW)
		check(cap == 0, "patched on shadow paging: cap 239 is 0, got %d",
		      cap);

	/* 3. The memslot flag. */
	mem = mmap(NULL, sz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		check(0, "mmap 2 MiB: %s", strerror(errno));
		goto out_vm;
	}
	rc = set_slot2(vm, 0, 0, 0, mem, sz, &err);
	check(rc == 0, "plain slot via KVM_SET_USER_MEMORY_REGION2: %s",
	      errname(rc, err));
	rc = set_slot2(vm, 1, KVM_MEM_NON_COHERENT_DMA, 1ull << 30, mem, sz,
		       &err);
	flag_ok = rc == 0;
	info("slot with flag 1<<3 via REGION2: %s", errname(rc, err));
	if (ex == STOCK_NPT)
		check(!flag_ok && err == EINVAL,
		      "stock: flag 1<<3 refused with EINVAL, got %s",
		      errname(rc, err));
	else if (ex == PATCHED_NPT)
		check(flag_ok, "patched on NPT: flag 1<<3 accepted, got %s",
		      errname(rc, err));
	else if (ex == PATCHED_SHADOW)
		check(!flag_ok && err == EINVAL,
		      "patched on shadow paging: flag 1<<3 refused (EINVAL), got %s",
		      errname(rc, err));
	if (flag_ok) {
		/* The flag is immutable on an existing slot. */
		rc = set_slot2(vm, 1, 0, 1ull << 30, mem, sz, &err);
		check(rc < 0 && err == EINVAL,
		      "flag cannot be cleared on a live slot: %s",
		      errname(rc, err));
		rc = set_slot2(vm, 1, KVM_MEM_NON_COHERENT_DMA, 1ull << 30,
			       mem, 0, &err);
		check(rc == 0, "flagged slot deleted: %s", errname(rc, err));
	}
	rc = set_slot1(vm, 2, KVM_MEM_NON_COHERENT_DMA, 2ull << 30, mem, sz,
		       &err);
	info("slot with flag 1<<3 via v1 KVM_SET_USER_MEMORY_REGION: %s",
	     errname(rc, err));
	rc = set_slot2(vm, 3, 1u << 20, 3ull << 30, mem, sz, &err);
	check(rc < 0 && err == EINVAL, "unknown flag 1<<20 refused: %s",
	      errname(rc, err));
	munmap(mem, sz);
out_vm:
	close(vm);
out:
	close(kvm);
	printf("1..%d\n", test_no);
	return failures ? 1 : 0;
}
