// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kvm-smoke: the kernel tier's own guest-side check, independent of
 * libkvmnc's code. It talks to /dev/kvm with raw ioctls and asserts what the
 * series (patches/) must and must not change, per kernel personality: the
 * row KVMNC_EXPECT names in the live tests' one expectation table
 * (tests/live/live.h, header only; its probe columns double as the raw
 * answers: the device type registers, the flag capability is 1 and the flag
 * is taken exactly where the library must call them supported).  The
 * numbers are the series': 239 and device type 32 for the 6.12 backport
 * (patches/6.12, as ChromeOS), 250 and 17 for the series on 7.2
 * (patches/7.2), which also takes the flag only through
 * KVM_SET_USER_MEMORY_REGION2; kernels from 7.0 on are held to the latter.
 * Both series add capability 251 (WBINVD emulation on request).
 *
 * It also checks that the guest KVM is the one the run is about: which
 * vendor module is active (both are built in, so both have parameter files:
 * the MSR list KVM hands out tells them apart), whether it uses EPT/NPT,
 * whether the CPU self-snoops.
 *
 * Without KVMNC_EXPECT it only prints what it observes (on a host without
 * VMX or SVM it checks the "nohw" row). Output is TAP; exit 0 pass, 1 fail,
 * 77 skip (no /dev/kvm).
 *
 * Debian 12's linux-libc-dev is 6.1: what is newer comes from
 * libkvmnc/compat-kvm.h.
 */
#include <linux/kvm.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include "compat-kvm.h"
#include "live.h"

static bool upstream_numbers(void);

/* Emulated by kvm_intel only (svm_has_emulated_msr() refuses it). */
#define MSR_IA32_MCG_EXT_CTL 0x4d0
/* Emulated by kvm_amd only (vmx_has_emulated_msr() refuses it). */
#define MSR_AMD64_VIRT_SPEC_CTRL 0xc001011f

static void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

/* 1 when the "flags" line of /proc/cpuinfo lists @flag, 0 if not, -1 unreadable. */
static int cpu_flag(const char *flag)
{
	char line[4096], *tok, *save = NULL;
	int found = -1;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) || !strchr(line, ':'))
			continue;
		found = 0;
		for (tok = strtok_r(strchr(line, ':') + 1, " \n", &save); tok;
		     tok = strtok_r(NULL, " \n", &save))
			found |= !strcmp(tok, flag);
	}
	fclose(f);
	return found;
}

/*
 * The active vendor module, from KVM_GET_MSR_INDEX_LIST: each vendor's
 * has_emulated_msr() hides an MSR the other one lists. NULL if neither or
 * both show (which would be a bug worth failing on).
 */
static const char *active_module(int kvm)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;
	bool intel = false, amd = false;

	if (ioctl(kvm, KVM_GET_MSR_INDEX_LIST, &probe) == 0 || errno != E2BIG)
		return NULL;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm, KVM_GET_MSR_INDEX_LIST, list) == 0) {
		for (uint32_t i = 0; i < list->nmsrs; i++) {
			intel |= list->indices[i] == MSR_IA32_MCG_EXT_CTL;
			amd |= list->indices[i] == MSR_AMD64_VIRT_SPEC_CTRL;
		}
	}
	free(list);
	if (intel == amd)
		return NULL;
	return intel ? "kvm_intel" : "kvm_amd";
}

static int set_slot2(int vm, uint32_t slot, uint32_t flags, uint64_t gpa, void *mem, uint64_t size,
		     int *err)
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

static int set_slot1(int vm, uint32_t slot, uint32_t flags, uint64_t gpa, void *mem, uint64_t size,
		     int *err)
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

/* Which KVM this is: vendor module, paging mode, self-snoop, quirk bit. */
static void check_host(int kvm, const struct t_expect *e)
{
	const char *mod = active_module(kvm);
	int tdp = -1, ss = cpu_flag("ss");
	long mask;
	int vm;

	info("active vendor module (from KVM_GET_MSR_INDEX_LIST): %s", mod ? mod : "unknown");
	if (mod)
		tdp = read_bool_param(!strcmp(mod, "kvm_intel")
					      ? "/sys/module/kvm_intel/parameters/ept"
					      : "/sys/module/kvm_amd/parameters/npt");
	info("%s.%s=%d (1 EPT/NPT, 0 shadow paging, -1 unknown); CPU self-snoop %d",
	     mod ? mod : "?", mod && !strcmp(mod, "kvm_intel") ? "ept" : "npt", tdp, ss);
	if (e && e->module)
		t_check(mod && !strcmp(mod, e->module), "guest KVM runs on %s (got %s)", e->module,
			mod ? mod : "neither or both");
	if (e && e->tdp != T_ANY)
		t_check(tdp == e->tdp, "guest KVM uses %s (got %d)",
			e->tdp ? "two-dimensional paging" : "shadow paging", tdp);
	if (e && e->self_snoop != T_ANY)
		T_EQ(ss, e->self_snoop, "CPU self-snoop (/proc/cpuinfo ss)");

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return;
	mask = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2);
	info("KVM_CAP_DISABLE_QUIRKS2 mask=%#lx, IGNORE_GUEST_PAT bit 9 %s", mask,
	     (mask > 0 && (mask & KVMNC_QUIRK_IGNORE_GUEST_PAT)) ? "present" : "absent");
	if (e && e->quirk_bit != T_ANY) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_DISABLE_QUIRKS2,
			.args = {KVMNC_QUIRK_IGNORE_GUEST_PAT},
		};
		int rc, err;

		T_EQ(mask > 0 && (mask & KVMNC_QUIRK_IGNORE_GUEST_PAT), e->quirk_bit,
		     "quirk mask lists IGNORE_GUEST_PAT");
		rc = ioctl(vm, KVM_ENABLE_CAP, &cap);
		err = errno;
		if (e->quirk_bit)
			t_check(rc == 0, "disabling IGNORE_GUEST_PAT on a fresh VM: %s",
				errname(rc, err));
		else
			t_check(rc < 0 && err == EINVAL,
				"disabling IGNORE_GUEST_PAT refused with EINVAL: %s",
				errname(rc, err));
	}
	close(vm);
}

static void check_device(int vm, const struct t_expect *e)
{
	const unsigned int type =
		upstream_numbers() ? KVMNC_DEV_TYPE_VIRTIO_V3 : KVMNC_DEV_TYPE_VIRTIO_612;
	struct kvm_create_device cd = {.type = type, .flags = KVM_CREATE_DEVICE_TEST};
	struct kvm_device_attr a = {
		.group = KVM_DEV_VIRTIO_NONCOHERENT,
		.attr = KVM_DEV_VIRTIO_NONCOHERENT_SET,
	};
	int rc, err;

	rc = ioctl(vm, KVM_CREATE_DEVICE, &cd);
	err = errno;
	info("KVM_CREATE_DEVICE_TEST type %u: %s", type, errname(rc, err));
	if (e && e->device)
		t_check(rc == 0, "device type %u registered (test create): %s", type,
			errname(rc, err));
	else if (e)
		t_check(rc < 0 && err == ENODEV, "device type %u refused (test create, ENODEV): %s",
			type, errname(rc, err));

	cd.flags = 0;
	rc = ioctl(vm, KVM_CREATE_DEVICE, &cd);
	err = errno;
	if (e && !e->device) {
		t_check(rc < 0 && err == ENODEV, "device type %u refused (create, ENODEV): %s",
			type, errname(rc, err));
	} else if (e) {
		t_check(rc == 0 && (int)cd.fd >= 0, "virtio device created: %s", errname(rc, err));
	}
	if (rc < 0)
		return;
	rc = ioctl((int)cd.fd, KVM_HAS_DEVICE_ATTR, &a);
	t_check(rc == 0, "device has attr group 1 / attr 1: %s", errname(rc, errno));
	rc = ioctl((int)cd.fd, KVM_SET_DEVICE_ATTR, &a);
	t_check(rc == 0, "set NONCOHERENT: %s", errname(rc, errno));
	rc = ioctl((int)cd.fd, KVM_SET_DEVICE_ATTR, &a);
	t_check(rc == 0, "set NONCOHERENT again (idempotent): %s", errname(rc, errno));
	a.attr = 99;
	rc = ioctl((int)cd.fd, KVM_HAS_DEVICE_ATTR, &a);
	t_check(rc < 0, "unknown attr refused: %s", errname(rc, errno));
	close((int)cd.fd);
}

/* REGION2 where the kernel has it (6.8+), the v1 ioctl on older ones. */
static int set_slot(bool v2, int vm, uint32_t slot, uint32_t flags, uint64_t gpa, void *mem,
		    uint64_t size, int *err)
{
	return v2 ? set_slot2(vm, slot, flags, gpa, mem, size, err)
		  : set_slot1(vm, slot, flags, gpa, mem, size, err);
}

static void check_flag(int vm, const struct t_expect *e, bool v2)
{
	const char *how = v2 ? "KVM_SET_USER_MEMORY_REGION2" : "KVM_SET_USER_MEMORY_REGION";
	const int capno =
		upstream_numbers() ? KVMNC_CAP_NONCOHERENT_DMA_V3 : KVMNC_CAP_NONCOHERENT_DMA_612;
	const size_t sz = 2 << 20;
	int rc, err, cap;
	void *mem;

	cap = ioctl(vm, KVM_CHECK_EXTENSION, capno);
	info("KVM_CHECK_EXTENSION(%d) = %d", capno, cap);
	if (e)
		T_EQ(cap, e->flag, "flag capability (USER_CONFIGURE_NONCOHERENT_DMA)");
	/* WBINVD emulation comes with the series, on request only. */
	cap = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_X86_EMULATE_WBINVD);
	info("KVM_CHECK_EXTENSION(%d) = %d", KVM_CAP_X86_EMULATE_WBINVD, cap);
	if (e && e->flag)
		T_EQ(cap, 1, "capability 251 (X86_EMULATE_WBINVD) with the series");

	mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (mem == MAP_FAILED) {
		t_check(0, "mmap 2 MiB: %s", strerror(errno));
		return;
	}
	rc = set_slot(v2, vm, 0, 0, 0, mem, sz, &err);
	t_check(rc == 0, "plain slot via %s: %s", how, errname(rc, err));
	rc = set_slot(v2, vm, 1, KVM_MEM_NON_COHERENT_DMA, 1ull << 30, mem, sz, &err);
	info("slot with flag 1<<3 via %s: %s", how, errname(rc, err));
	if (e && e->flag)
		t_check(rc == 0, "flag 1<<3 accepted: %s", errname(rc, err));
	else if (e)
		t_check(rc < 0 && err == EINVAL, "flag 1<<3 refused with EINVAL: %s",
			errname(rc, err));
	if (rc == 0) {
		/* The flag is immutable on an existing slot. */
		rc = set_slot(v2, vm, 1, 0, 1ull << 30, mem, sz, &err);
		t_check(rc < 0 && err == EINVAL, "flag cannot be cleared on a live slot: %s",
			errname(rc, err));
		rc = set_slot(v2, vm, 1, KVM_MEM_NON_COHERENT_DMA, 1ull << 30, mem, 0, &err);
		t_check(rc == 0, "flagged slot deleted: %s", errname(rc, err));
	}
	if (v2) {
		rc = set_slot1(vm, 2, KVM_MEM_NON_COHERENT_DMA, 2ull << 30, mem, sz, &err);
		info("slot with flag 1<<3 via v1 KVM_SET_USER_MEMORY_REGION: %s", errname(rc, err));
		/* The 7.2 series leaves the v1 ioctl's flags as upstream froze them. */
		if (e && e->flag && upstream_numbers())
			t_check(rc < 0 && err == EINVAL, "v1 ioctl refuses flag 1<<3: %s",
				errname(rc, err));
		if (rc == 0)
			set_slot1(vm, 2, KVM_MEM_NON_COHERENT_DMA, 2ull << 30, mem, 0, &err);
	}
	rc = set_slot(v2, vm, 3, 1u << 20, 3ull << 30, mem, sz, &err);
	t_check(rc < 0 && err == EINVAL, "unknown flag 1<<20 refused: %s", errname(rc, err));
	munmap(mem, sz);
}

static const char *release(void)
{
	static struct utsname u;

	if (!u.release[0] && uname(&u) < 0)
		return "?";
	return u.release;
}

static bool kernel_at_least(int major, int minor)
{
	int ma = 0, mi = 0;

	if (sscanf(release(), "%d.%d", &ma, &mi) != 2)
		return true; /* unparsable: hold it to the newest rules */
	return ma > major || (ma == major && mi >= minor);
}

static bool upstream_numbers(void)
{
	return kernel_at_least(7, 0);
}

int main(void)
{
	const struct t_expect *e = t_expect();
	int kvm, vm, cap;

	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "kvm-smoke: skip: cannot open /dev/kvm: %s\n", strerror(errno));
		printf("1..0 # SKIP no /dev/kvm\n");
		return T_EXIT_SKIP;
	}
	info("expecting %s", e ? e->name : "nothing (observe only)");
	T_EQ(ioctl(kvm, KVM_GET_API_VERSION, 0), KVM_API_VERSION, "KVM_GET_API_VERSION");
	check_host(kvm, e);

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	t_check(vm >= 0, "KVM_CREATE_VM %s", errname(vm, errno));
	if (vm >= 0) {
		/* KVM_SET_USER_MEMORY_REGION2 came with 6.8 (Debian 12's own 6.1
		 * lacks it): its absence is a finding only on a newer kernel. */
		cap = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2);
		if (kernel_at_least(6, 8))
			t_check(cap > 0, "KVM_CAP_USER_MEMORY2 (231) present on %s: %d", release(),
				cap);
		else
			t_check(cap <= 0, "KVM_CAP_USER_MEMORY2 (231) absent on %s: %d", release(),
				cap);
		check_device(vm, e);
		check_flag(vm, e, cap > 0);
		close(vm);
	}
	close(kvm);
	return t_done();
}
