// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which mechanism does this kernel offer? Capability numbers only hint (236
 * and 239 mean different things on ChromeOS and upstream, 250 is free
 * upstream today, device type numbers are out-of-tree ABI), so everything
 * that can be tried is tried:
 * on one scratch VM, once per process and KVM node, or, where no scratch VM
 * can be made (a seccomp filter, an unprivileged VMM handed its VM fd, a
 * machine that needs a VM type), on the caller's own VM when a handle opens.
 *
 * The host cache is a list that only grows, read without a lock: a cached
 * answer never waits for another thread's probe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat-kvm.h"
#include "internal.h"

/*
 * Device type numbers the VIRTIO device is known under (the 6.12 backport,
 * the 7.2 series, the RFC as posted); the attribute decides.
 */
static const uint32_t virtio_types[] = {KVMNC_DEV_TYPE_VIRTIO_612, KVMNC_DEV_TYPE_VIRTIO_V3,
					KVMNC_DEV_TYPE_VIRTIO_SEED};

static struct kvmnc_host *probe_cache;

static void set_status(struct kvmnc_features *f, uint32_t code, struct kvmnc_mech_status *st,
		       int supported, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Where @st (one of @f's answers) keeps its reason code (mechanism.c). */
static uint32_t *reason_code(struct kvmnc_features *f, const struct kvmnc_mech_status *st)
{
	size_t off = (size_t)((const char *)st - (const char *)f);

	if (st == &f->wbinvd_emulation)
		return &f->wbinvd_emulation_reason;
	for (size_t i = 0; i < KVMNC_NMECH; i++)
		if (kvmnc_mechanisms[i].status == off)
			return (uint32_t *)((char *)f + kvmnc_mechanisms[i].reason);
	return &f->native_reason; /* not reached: every answer is in the table */
}

/*
 * One answer: @supported, the sentence, and the stable code a VMM
 * branches on (docs/reasons.tsv). @code 0: what @supported says alone
 * (yes, or could not tell); every "no" names its own.
 */
static void set_status(struct kvmnc_features *f, uint32_t code, struct kvmnc_mech_status *st,
		       int supported, const char *fmt, ...)
{
	/* Formatted aside (fmt's arguments may be st->reason itself), zero-padded so
	 * that two answers compare equal bytewise. */
	char buf[KVMNC_REASON_MAX] = {0};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(st->reason, buf, sizeof(buf));
	st->supported = supported;
	if (!code)
		code = supported == 1  ? KVMNC_REASON_SUPPORTED
		       : supported < 0 ? KVMNC_REASON_COULD_NOT_TELL
				       : KVMNC_REASON_KERNEL_LACKS;
	*reason_code(f, st) = code;
}

static bool cpu_is(const struct kvmnc_host *hst, int vendor)
{
	return hst->cpu.vendor == vendor;
}

static void decide_native(struct kvmnc_host *hst)
{
	struct kvmnc_features *f = &hst->feat;
	struct kvmnc_mech_status *st = &f->native;
	int tdp = hst->cpu.tdp;

	if (hst->cpu.cpuid_err) {
		set_status(f, 0, st, hst->cpu.cpuid_err, "could not identify the CPU: %s",
			   strerror(-hst->cpu.cpuid_err));
		return;
	}
	switch (hst->cpu.vendor) {
	case KVMNC_VENDOR_NOT_X86:
		set_status(f, KVMNC_REASON_ARCH, st, 0,
			   "memory-type handling on this architecture has not been "
			   "checked by libkvmnc; reported as unsupported");
		return;
	case KVMNC_VENDOR_INTEL:
		set_status(f, KVMNC_REASON_IGNORES_GUEST_PAT, st, 0,
			   "Intel VMX: KVM maps guest RAM as WB with IPAT (guest PAT "
			   "ignored) unless a mechanism tells it otherwise");
		return;
	case KVMNC_VENDOR_UNKNOWN:
		set_status(f, KVMNC_REASON_UNKNOWN_VENDOR, st, 0,
			   "unknown x86 vendor \"%s\": not known to honor guest PAT",
			   f->cpu_vendor);
		return;
	}

	if (tdp == 1) {
		set_status(f, 0, st, 1,
			   "AMD NPT combines guest PAT with the host memory type: "
			   "guest WC/UC reaches the hardware, nothing to enable");
	} else if (tdp == 0) {
		set_status(f, KVMNC_REASON_NO_TDP, st, 0,
			   "AMD host with NPT disabled (kvm_amd npt=N): shadow paging "
			   "ignores guest PAT");
	} else if (tdp == -ENOENT && hst->sys_quirks_mask < 0) {
		set_status(f, 0, st, (int)hst->sys_quirks_mask, "could not read the quirk mask: %s",
			   strerror((int)-hst->sys_quirks_mask));
	} else if (tdp == -ENOENT && (hst->sys_quirks_mask & KVMNC_QUIRK_IGNORE_GUEST_PAT)) {
		/* 6.12.78+ lists the quirk on SVM only when NPT is on. */
		set_status(f, 0, st, 1,
			   "AMD host; the IGNORE_GUEST_PAT quirk is listed, so KVM uses "
			   "NPT, which honors guest PAT");
	} else if (tdp == -ENOENT) {
		set_status(f, KVMNC_REASON_NO_TDP, st, 0,
			   "AMD host, but KVM is not kvm_amd with NPT (no "
			   "/sys/module/kvm_amd): shadow paging ignores guest PAT");
	} else {
		set_status(f, 0, st, tdp, "could not read kvm_amd's npt parameter: %s",
			   strerror(-tdp));
	}
}

static void decide_quirk(struct kvmnc_host *hst, int64_t smask)
{
	struct kvmnc_features *f = &hst->feat;
	struct kvmnc_mech_status *st = &f->guest_pat_quirk;
	unsigned long long mask = (unsigned long long)smask;
	int vendor = hst->cpu.vendor, tdp = hst->cpu.tdp;

	if (smask < 0) {
		set_status(f, 0, st, (int)smask, "could not read KVM_CAP_DISABLE_QUIRKS2: %s",
			   strerror((int)-smask));
		return;
	}
	f->quirks_mask = mask;
	if (hst->cpu.cpuid_err && (mask & KVMNC_QUIRK_IGNORE_GUEST_PAT)) {
		/* Listed on Intel it works; listed on AMD it is moot: need the vendor. */
		set_status(f, 0, st, hst->cpu.cpuid_err, "could not identify the CPU: %s",
			   strerror(-hst->cpu.cpuid_err));
		return;
	}
	if (vendor == KVMNC_VENDOR_NOT_X86) {
		set_status(f, KVMNC_REASON_ARCH, st, 0, "the guest-PAT quirk exists only on x86");
		return;
	}
	if (mask == 0) {
		set_status(f, KVMNC_REASON_KERNEL_LACKS, st, 0,
			   "kernel has no KVM_CAP_DISABLE_QUIRKS2 (older than 5.16)");
		return;
	}
	if (mask & KVMNC_QUIRK_IGNORE_GUEST_PAT) {
		if (vendor == KVMNC_VENDOR_AMD)
			set_status(f, KVMNC_REASON_NATIVE_ALREADY, st, 0,
				   "quirk mask 0x%llx lists IGNORE_GUEST_PAT, but on AMD "
				   "NPT it is off from VM creation: guest PAT is honored "
				   "natively",
				   mask);
		else
			set_status(f, 0, st, 1,
				   "quirk mask 0x%llx includes IGNORE_GUEST_PAT (bit 9): "
				   "EPT with a self-snooping CPU%s",
				   mask,
				   hst->cpu.from_quirk_mask
					   ? " (KVM's word: /sys or /proc could not be read)"
					   : "");
		return;
	}

	/* Why KVM dropped bit 9 (vmx_hardware_setup), as KVM itself decides it. */
	if (vendor == KVMNC_VENDOR_INTEL && hst->cpu.self_snoop_err)
		set_status(f, KVMNC_REASON_KERNEL_LACKS, st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT (KVM drops it without EPT "
			   "or self-snoop; /proc/cpuinfo unreadable: %s)",
			   mask, strerror(-hst->cpu.self_snoop_err));
	else if (vendor == KVMNC_VENDOR_INTEL && hst->cpu.self_snoop == 0)
		set_status(f, KVMNC_REASON_NO_SELF_SNOOP, st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: the CPU has no "
			   "self-snoop (%s), so honoring guest PAT would be unsafe",
			   mask,
			   hst->cpu.self_snoop_kernel ? "no \"ss\" in /proc/cpuinfo"
						      : "CPUID.1:EDX[27] clear");
	else if (tdp == 0)
		set_status(f, KVMNC_REASON_NO_TDP, st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: %s is disabled "
			   "(shadow paging always ignores guest PAT)",
			   mask, kvmnc_tdp_name(vendor));
	else if (tdp == -ENOENT)
		set_status(f, KVMNC_REASON_NO_TDP, st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: KVM is not %s "
			   "here (no /sys/module/%s), so no EPT/NPT; shadow paging "
			   "always ignores guest PAT",
			   mask, kvmnc_kvm_module(vendor), kvmnc_kvm_module(vendor));
	else if (tdp < 0)
		set_status(f, KVMNC_REASON_KERNEL_LACKS, st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT (KVM drops it without "
			   "%s or self-snoop, or is older than 6.16 / 6.12.78; %s could not be "
			   "read: %s)",
			   mask, kvmnc_tdp_name(vendor), kvmnc_kvm_module(vendor), strerror(-tdp));
	else
		set_status(f, KVMNC_REASON_KERNEL_LACKS, st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: kernel older "
			   "than 6.16 / 6.12.78",
			   mask);
}

/*
 * Guest WBINVD emulation on request. Only a VM answers the capability, and
 * the number alone is a hint (251 is free upstream today, so a later
 * upstream capability could take it): on a scratch VM, before it has a
 * vCPU, KVM_ENABLE_CAP is tried as well. Never on the VMM's VM, where it
 * could not be undone: there the capability's answer stands alone.
 */
static void decide_wbinvd(struct kvmnc_host *hst)
{
	struct kvmnc_features *f = &hst->feat;
	struct kvmnc_mech_status *st = &f->wbinvd_emulation;
	const unsigned int num = KVM_CAP_X86_EMULATE_WBINVD;
	int cap = hst->cap_wbinvd, trial = hst->wbinvd_trial;

	f->wbinvd_emulation_cap = 0;
	if (hst->cpu.cpuid_err) {
		set_status(f, 0, st, hst->cpu.cpuid_err, "could not identify the CPU: %s",
			   strerror(-hst->cpu.cpuid_err));
		return;
	}
	if (hst->cpu.vendor == KVMNC_VENDOR_NOT_X86) {
		set_status(f, KVMNC_REASON_ARCH, st, 0, "WBINVD emulation exists only on x86");
		return;
	}
	if (cap < 0) {
		set_status(f, 0, st, cap,
			   "could not ask a VM for capability %u (KVM_CAP_X86_EMULATE_WBINVD): %s",
			   num, strerror(-cap));
		return;
	}
	if (cap == 0) {
		set_status(f, KVMNC_REASON_KERNEL_LACKS, st, 0,
			   "capability %u (KVM_CAP_X86_EMULATE_WBINVD) answers 0: this kernel "
			   "does not emulate WBINVD on request",
			   num);
		return;
	}
	if (trial == -EINVAL) {
		set_status(f, KVMNC_REASON_OTHER_MEANING, st, 0,
			   "capability %u answers %d, but KVM_ENABLE_CAP refuses it without flags "
			   "or arguments on a VM without vCPUs: %u is something else here",
			   num, cap, num);
		return;
	}
	if (trial < 0) {
		set_status(f, 0, st, trial,
			   "capability %u answers %d, but KVM_ENABLE_CAP could not be tried on a "
			   "scratch VM: %s",
			   num, cap, strerror(-trial));
		return;
	}
	f->wbinvd_emulation_cap = num;
	if (trial == 0)
		set_status(
			f, 0, st, 1,
			"KVM_CAP_X86_EMULATE_WBINVD (%u) answers %d and KVM_ENABLE_CAP turned it "
			"on for a scratch VM",
			num, cap);
	else
		set_status(f, 0, st, 1,
			   "KVM_CAP_X86_EMULATE_WBINVD (%u) answers %d on the VMM's VM "
			   "(KVM_ENABLE_CAP not tried there: it cannot be undone)",
			   num, cap);
}

/*
 * Whether KVM can honor guest PAT on this host at all, whatever a kernel
 * offers: 1 yes, 0 no (with the reason in @why), negative errno: cannot
 * tell. Intel needs EPT and self-snoop, the conditions under which KVM
 * itself offers the quirk; AMD needs NPT. Other architectures are not gated
 * here (their native answer already says "unchecked").
 */
static int pat_gate(const struct kvmnc_host *hst, char *why, size_t len, uint32_t *code)
{
	const struct kvmnc_cpu *c = &hst->cpu;

	if (c->cpuid_err) {
		snprintf(why, len, "could not identify the CPU: %s", strerror(-c->cpuid_err));
		return c->cpuid_err;
	}
	if (c->vendor != KVMNC_VENDOR_INTEL && c->vendor != KVMNC_VENDOR_AMD)
		return 1;
	if (c->tdp == 0) {
		snprintf(why, len,
			 "%s is disabled (%s %s=N): shadow paging ignores guest PAT, so it "
			 "would change no memory type",
			 kvmnc_tdp_name(c->vendor), kvmnc_kvm_module(c->vendor),
			 c->vendor == KVMNC_VENDOR_AMD ? "npt" : "ept");
		*code = KVMNC_REASON_NO_TDP;
		return 0;
	}
	if (c->tdp == -ENOENT) {
		snprintf(why, len,
			 "KVM is not %s here (no /sys/module/%s): no %s, and shadow paging "
			 "ignores guest PAT",
			 kvmnc_kvm_module(c->vendor), kvmnc_kvm_module(c->vendor),
			 kvmnc_tdp_name(c->vendor));
		*code = KVMNC_REASON_NO_TDP;
		return 0;
	}
	if (c->tdp == -ENODATA) {
		snprintf(why, len,
			 "could not tell whether KVM uses %s: %s, and no IGNORE_GUEST_PAT in the "
			 "quirk mask to say so",
			 kvmnc_tdp_name(c->vendor),
			 c->no_paths ? "KVMNC_OPEN_KVM_FD opens no path (probe before the sandbox)"
				     : "no /sys/module to read (a jail?)");
		return c->tdp;
	}
	if (c->tdp < 0) {
		snprintf(why, len, "could not tell whether KVM uses %s: %s",
			 kvmnc_tdp_name(c->vendor), strerror(-c->tdp));
		return c->tdp;
	}
	if (c->vendor == KVMNC_VENDOR_INTEL && c->self_snoop_err) {
		snprintf(why, len, "could not read the kernel's CPU flags (/proc/cpuinfo): %s",
			 strerror(-c->self_snoop_err));
		return c->self_snoop_err;
	}
	if (c->vendor == KVMNC_VENDOR_INTEL && c->self_snoop == 0) {
		snprintf(why, len,
			 "the CPU has no self-snoop (%s): honoring guest PAT would be unsafe",
			 c->self_snoop_kernel ? "no \"ss\" in /proc/cpuinfo"
					      : "CPUID.1:EDX[27] clear");
		*code = KVMNC_REASON_NO_SELF_SNOOP;
		return 0;
	}
	return 1;
}

/* Never claim the flag or the device where guest PAT cannot be honored. */
static void apply_gate(struct kvmnc_host *hst)
{
	struct kvmnc_mech_status *mech[] = {&hst->feat.memslot_flag, &hst->feat.virtio_device};
	char why[KVMNC_REASON_MAX];
	uint32_t gate_code = 0;
	int g = pat_gate(hst, why, sizeof(why), &gate_code);

	if (g == 1)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(mech); i++) {
		struct kvmnc_mech_status *st = mech[i];

		if (st->supported == 1 && g < 0)
			set_status(&hst->feat, 0, st, g, "%s", why);
		else if (st->supported == 1)
			set_status(&hst->feat, gate_code, st, 0, "%s (the kernel accepts it: %s)",
				   why, st->reason);
		else if (st->supported == 0 && g == 0)
			set_status(&hst->feat, gate_code, st, 0, "%s; %s", why, st->reason);
	}
}

/* Real creates on the caller's VM only where an answering type must be out of tree. */
static bool may_create_on_callers_vm(const struct kvmnc_host *hst)
{
	return hst->cpu.vendor == KVMNC_VENDOR_INTEL || hst->cpu.vendor == KVMNC_VENDOR_AMD;
}

/*
 * Tries each number the VIRTIO device is known under: registered (test
 * create), created for real (a VM type may refuse it), and confirmed by its
 * attribute, never by the number. The created device is closed again
 * without KVM_SET_DEVICE_ATTR, which leaves the VM as it was.
 */
static void try_device(struct kvmnc_host *hst, int vm_fd, bool callers)
{
	struct kvmnc_mech_status *st = &hst->feat.virtio_device;
	const char *where = callers ? "the VMM's VM" : "a scratch VM";
	char notes[KVMNC_REASON_MAX] = "";
	int unknown = 0;
	size_t used = 0;

	hst->feat.virtio_device_type = 0;
	for (size_t i = 0; i < ARRAY_SIZE(virtio_types); i++) {
		uint32_t type = virtio_types[i];
		const char *sep = used ? "; " : "";
		int r, fd;

		r = kvmnc_kvm_device_test(vm_fd, type);
		if (r == -ENODEV) {
			used += (size_t)snprintf(notes + used, sizeof(notes) - used,
						 "%stype %u is not registered", sep, type);
			continue;
		}
		if (r < 0) {
			unknown = unknown ? unknown : r;
			continue;
		}
		if (callers && !may_create_on_callers_vm(hst)) {
			/* A foreign device created for real would stay in the VMM's VM. */
			unknown = unknown ? unknown : -EOPNOTSUPP;
			continue;
		}
		fd = kvmnc_kvm_device_create(vm_fd, type);
		if (fd == -ENODEV) {
			used += (size_t)snprintf(
				notes + used, sizeof(notes) - used,
				"%stype %u is registered but KVM refuses to create "
				"it on %s",
				sep, type, where);
			continue;
		}
		if (fd < 0) {
			unknown = unknown ? unknown : fd;
			continue;
		}
		r = kvmnc_kvm_device_has_nc(fd);
		SYS(close, fd);
		if (r == 0) {
			hst->feat.virtio_device_type = type;
			set_status(&hst->feat, 0, st, 1,
				   "KVM_DEV_TYPE_VIRTIO (%u) created on %s and has "
				   "KVM_DEV_VIRTIO_NONCOHERENT_SET",
				   type, where);
			return;
		}
		/* EPERM is KVM's answer for a device without has_attr: not ours either. */
		if (r == -ENXIO || r == -EINVAL || r == -ENODEV || r == -ENOTTY || r == -EPERM)
			used += (size_t)snprintf(
				notes + used, sizeof(notes) - used,
				"%stype %u exists but is not the KVM VIRTIO device "
				"(no NONCOHERENT_SET attribute: %s)",
				sep, type, strerror(-r));
		else
			unknown = unknown ? unknown : r;
		if (used >= sizeof(notes))
			used = sizeof(notes) - 1;
	}
	if (unknown == -EOPNOTSUPP)
		set_status(&hst->feat, 0, st, unknown,
			   "a device type answers, but creating an unknown device on the VMM's VM "
			   "could leave it there; no scratch VM to try it on (%s)",
			   notes[0] ? notes : "-");
	else if (unknown)
		set_status(&hst->feat, 0, st, unknown,
			   "could not try the KVM VIRTIO device on %s: %s", where,
			   strerror(-unknown));
	else
		set_status(&hst->feat, KVMNC_REASON_KERNEL_LACKS, st, 0,
			   "%s: kernel without the KVM VIRTIO device", notes);
}

/* What a capability that was not confirmed by trial means on this kernel. */
static const char *cap_note(int cap_cros_flag, int cap_flag, int cap_flag_v3, char *note,
			    size_t len)
{
	note[0] = '\0';
	if (cap_flag_v3 > 0)
		snprintf(note, len, "; capability %u = %d means something else here",
			 KVMNC_CAP_NONCOHERENT_DMA_V3, cap_flag_v3);
	else if (cap_flag > 0)
		snprintf(note, len, "; capability %u = %d means something else here",
			 KVMNC_CAP_NONCOHERENT_DMA_612, cap_flag);
	else if (cap_cros_flag > 0)
		snprintf(note, len,
			 "; capability 236 = %d is KVM_CAP_PRE_FAULT_MEMORY here, not "
			 "ChromeOS's flag capability",
			 cap_cros_flag);
	return note;
}

/*
 * Where a trial slot goes on the caller's VM: the highest user slot id, at
 * the top of a 36-bit guest physical space (below every MAXPHYADDR and IPA
 * size KVM supports), where a VMM that opens its handle right after
 * KVM_CREATE_VM has nothing yet. It is deleted again at once.
 */
#define TRIAL_GPA (1ULL << 36)

/*
 * The capability that says "bit 3 is KVM_MEM_NON_COHERENT_DMA" on this
 * kernel, or 0: 250 (the 7.2 series) or 239 (ChromeOS 6.12, the 6.12
 * backport) on x86, where upstream has nothing at 250 (7.2) and an arm64
 * capability at 239; 236 only on kernels without
 * KVM_SET_USER_MEMORY_REGION2 (ChromeOS 5.15-6.6), since upstream's 236 is
 * KVM_CAP_PRE_FAULT_MEMORY from 6.10, after 6.8 brought the v2 ioctl. A
 * number upstream hands out later would say nothing by itself: the flag
 * must still be accepted by the trial memslot.
 */
static unsigned int flag_capability(const struct kvmnc_host *hst)
{
	bool x86 = hst->cpu.vendor == KVMNC_VENDOR_INTEL || hst->cpu.vendor == KVMNC_VENDOR_AMD;

	if (x86 && hst->cap_flag_v3 > 0)
		return KVMNC_CAP_NONCOHERENT_DMA_V3;
	if (x86 && hst->cap_flag > 0)
		return KVMNC_CAP_NONCOHERENT_DMA_612;
	if (hst->cap_cros_flag > 0 && hst->cap_user_memory2 == 0)
		return KVMNC_CAP_NONCOHERENT_DMA_CROS_OLD;
	return 0;
}

/* Code at GPA 0 for the access trial: mov al, [TRIAL_DATA_GPA]; hlt. */
#define TRIAL_DATA_GPA 0x1000u

/*
 * Bit 3 was accepted on the scratch VM with the trial slot (@reg, flagged)
 * at TRIAL_DATA_GPA, and no capability says what it means: does a guest
 * access to it complete? 1 yes, 0 it exits with KVM_EXIT_MEMORY_FAULT (a
 * KVM Userfault slot), negative errno: could not tell.
 */
static int access_trial(const struct kvmnc_host *hst, int kvm_fd, int vm_fd)
{
	static const unsigned char code[] = {0xa0, TRIAL_DATA_GPA & 0xff, TRIAL_DATA_GPA >> 8,
					     0xf4};
	struct kvmnc_region c = {.sz = sizeof(c), .slot = 0, .memory_size = KVMNC_PAGE_SIZE};
	void *page;
	int r, d;

	if (kvm_fd < 0 ||
	    (hst->cpu.vendor != KVMNC_VENDOR_INTEL && hst->cpu.vendor != KVMNC_VENDOR_AMD))
		return -EOPNOTSUPP;
	r = SYS(mmap_anon, KVMNC_PAGE_SIZE, &page);
	if (r < 0)
		return r;
	memcpy(page, code, sizeof(code));
	c.userspace_addr = (uintptr_t)page;
	r = kvmnc_kvm_set_region(vm_fd, hst->user_memory2, &c, 0);
	if (r == 0) {
		r = kvmnc_kvm_access_run(kvm_fd, vm_fd, 0, TRIAL_DATA_GPA);
		c.memory_size = 0;
		/* The scratch VM is closed next: a failed delete leaves nothing behind. */
		d = kvmnc_kvm_set_region(vm_fd, hst->user_memory2, &c, 0);
		(void)d;
	}
	SYS(munmap, page, KVMNC_PAGE_SIZE);
	if (r == KVM_EXIT_HLT)
		return 1;
	if (r == KVM_EXIT_MEMORY_FAULT)
		return 0;
	return r < 0 ? r : -EPROTO;
}

static void try_flag(struct kvmnc_host *hst, int kvm_fd, int vm_fd, bool callers, uint32_t nr_slots)
{
	struct kvmnc_mech_status *st = &hst->feat.memslot_flag;
	const char *ioc =
		hst->user_memory2 ? "KVM_SET_USER_MEMORY_REGION2" : "KVM_SET_USER_MEMORY_REGION";
	const char *where = callers ? "the VMM's VM" : "a scratch VM";
	struct kvmnc_region reg = {.sz = sizeof(reg), .memory_size = KVMNC_PAGE_SIZE};
	char note[96];
	void *page;
	int r, plain = 0, access = 0;

	hst->feat.memslot_flag_evidence = KVMNC_FLAG_EVIDENCE_NONE;
	hst->feat.memslot_flag_cap = 0;
	r = SYS(mmap_anon, KVMNC_PAGE_SIZE, &page);
	if (r < 0) {
		set_status(&hst->feat, 0, st, r, "could not map a page for the trial memslot: %s",
			   strerror(-r));
		return;
	}
	reg.userspace_addr = (uintptr_t)page;
	if (callers) {
		reg.slot = (nr_slots ? nr_slots : KVMNC_MAX_SLOT_ID) - 1;
		reg.guest_phys_addr = TRIAL_GPA - KVMNC_PAGE_SIZE;
	} else {
		/* Where the access trial's code reads it. */
		reg.slot = 1;
		reg.guest_phys_addr = TRIAL_DATA_GPA;
	}
	/* ChromeOS kernels before 6.8 take the flag in the v1 ioctl. */
	r = kvmnc_kvm_set_region(vm_fd, hst->user_memory2, &reg, KVM_MEM_NON_COHERENT_DMA);
	if (callers && r == -EINVAL) {
		/* Refused for the flag, or is the slot not free? A plain slot tells. */
		plain = kvmnc_kvm_set_region(vm_fd, hst->user_memory2, &reg, 0);
	}
	if (r == 0 && !flag_capability(hst))
		access = callers ? -EOPNOTSUPP : access_trial(hst, kvm_fd, vm_fd);
	if (callers && (r == 0 || (r == -EINVAL && plain == 0))) {
		/* The VMM's VM must not keep it: a transient failure gets more tries. */
		int d = -1;

		reg.memory_size = 0;
		for (int tries = 0; d < 0 && tries < 3; tries++)
			d = kvmnc_kvm_set_region(vm_fd, hst->user_memory2, &reg,
						 r == 0 ? KVM_MEM_NON_COHERENT_DMA : 0);
		if (d < 0) {
			/*
			 * The slot stays in the VMM's VM and maps this page: unmapping
			 * it would let the guest reach whatever the VMM maps there
			 * next. The page is left to the VM on purpose, and the open
			 * fails (kvmnc_probe_vm()).
			 */
			pr_warn("could not delete trial memslot %u (GPA %#llx) from the VMM's "
				"VM: %s; its page at %p stays mapped for the VM",
				reg.slot, (unsigned long long)reg.guest_phys_addr, strerror(-d),
				page);
			hst->trial_slot_left = true;
			page = NULL;
		}
	}
	if (page)
		SYS(munmap, page, KVMNC_PAGE_SIZE);

	if (r == 0 && flag_capability(hst)) {
		hst->feat.memslot_flag_cap = flag_capability(hst);
		hst->feat.memslot_flag_evidence = KVMNC_FLAG_EVIDENCE_CAPABILITY;
		set_status(&hst->feat, 0, st, 1,
			   "KVM_MEM_NON_COHERENT_DMA accepted by %s on %s (advertised by "
			   "capability %u)",
			   ioc, where, hst->feat.memslot_flag_cap);
	} else if (r == 0 && access == 1) {
		hst->feat.memslot_flag_evidence = KVMNC_FLAG_EVIDENCE_ACCESS;
		set_status(&hst->feat, 0, st, 1,
			   "KVM_MEM_NON_COHERENT_DMA accepted by %s on %s, no capability "
			   "advertises it, and a guest access to the flagged slot completed",
			   ioc, where);
	} else if (r == 0 && access == 0) {
		set_status(&hst->feat, KVMNC_REASON_OTHER_MEANING, st, 0,
			   "bit 3 of the memslot flags is accepted by %s, but a guest access to "
			   "such a slot exits with KVM_EXIT_MEMORY_FAULT: bit 3 is another "
			   "flag here (KVM_MEM_USERFAULT?), not KVM_MEM_NON_COHERENT_DMA",
			   ioc);
	} else if (r == 0) {
		set_status(&hst->feat, 0, st, access,
			   "bit 3 of the memslot flags is accepted by %s on %s, but no capability "
			   "says it is KVM_MEM_NON_COHERENT_DMA here and a guest access could not "
			   "confirm it: %s",
			   ioc, where, strerror(-access));
	} else if (r == -EINVAL && plain == 0) {
		set_status(&hst->feat, KVMNC_REASON_KERNEL_LACKS, st, 0,
			   "KVM_MEM_NON_COHERENT_DMA (0x8) refused by %s%s", ioc,
			   cap_note(hst->cap_cros_flag, hst->cap_flag, hst->cap_flag_v3, note,
				    sizeof(note)));
	} else if (r == -EINVAL) {
		set_status(&hst->feat, 0, st, plain,
			   "the trial memslot %u on the VMM's VM is not free (a plain slot fails "
			   "too: %s)",
			   reg.slot, strerror(-plain));
	} else {
		set_status(&hst->feat, 0, st, r,
			   "trial memslot with KVM_MEM_NON_COHERENT_DMA failed: %s", strerror(-r));
	}
}

static void try_on_vm(struct kvmnc_host *hst, int kvm_fd, int vm_fd, bool callers,
		      uint32_t nr_slots)
{
	try_device(hst, vm_fd, callers);
	if (hst->cap_user_memory2 < 0)
		set_status(&hst->feat, 0, &hst->feat.memslot_flag, hst->cap_user_memory2,
			   "could not tell which memslot ioctl to try: %s",
			   strerror(-hst->cap_user_memory2));
	else
		try_flag(hst, kvm_fd, vm_fd, callers, nr_slots);
}

static bool definitive(const struct kvmnc_features *f)
{
	return f->native.supported >= 0 && f->memslot_flag.supported >= 0 &&
	       f->virtio_device.supported >= 0 && f->guest_pat_quirk.supported >= 0 &&
	       f->wbinvd_emulation.supported >= 0;
}

/* KVM_CREATE_VM failures that a retry would meet again. */
static bool final_error(int err)
{
	return err == -EPERM || err == -EACCES || err == -EINVAL || err == -ENODEV ||
	       err == -ENOSYS || err == -EOPNOTSUPP || err == -ENOTTY;
}

static void no_trials(struct kvmnc_host *hst, int err, const char *what)
{
	const char *why = strerror(-err);

	hst->trial_err = err;
	hst->trial_err_final = final_error(err);
	set_status(&hst->feat, 0, &hst->feat.virtio_device, err,
		   "could not %s to try the device: %s", what, why);
	set_status(&hst->feat, 0, &hst->feat.memslot_flag, err, "could not %s to try the flag: %s",
		   what, why);
	/* Only a VM answers it: the VMM's, when a handle opens. */
	hst->cap_wbinvd = err;
	hst->wbinvd_trial = 1;
}

/* Facts every path gathers the same way: the CPU, the kernel, the capabilities on @fd. */
static void common_facts(struct kvmnc_host *hst, int fd, bool read_paths)
{
	struct kvmnc_features *f = &hst->feat;
	struct utsname u;
	int r;

	if (SYS(uname, &u) == 0)
		snprintf(f->kernel_release, sizeof(f->kernel_release), "%s", u.release);
	kvmnc_cpu_probe(&hst->cpu, read_paths);
	memcpy(f->cpu_vendor, hst->cpu.vendor_str, sizeof(f->cpu_vendor));
	f->self_snoop = hst->cpu.self_snoop;
	f->tdp = hst->cpu.tdp;

	hst->cap_user_memory2 = kvmnc_kvm_check(fd, KVM_CAP_USER_MEMORY2);
	hst->user_memory2 = hst->cap_user_memory2 > 0;
	hst->cap_cros_flag = kvmnc_kvm_check(fd, KVMNC_CAP_NONCOHERENT_DMA_CROS_OLD);
	hst->cap_flag = kvmnc_kvm_check(fd, KVMNC_CAP_NONCOHERENT_DMA_612);
	hst->cap_flag_v3 = kvmnc_kvm_check(fd, KVMNC_CAP_NONCOHERENT_DMA_V3);
	hst->sys_quirks_mask = kvmnc_kvm_check(fd, KVM_CAP_DISABLE_QUIRKS2);
	r = kvmnc_kvm_check(fd, KVMNC_CAP_VM_TYPES);
	f->vm_types = r > 0 ? (uint32_t)r : 0;
	r = kvmnc_kvm_check(fd, KVM_CAP_MULTI_ADDRESS_SPACE);
	f->address_spaces = r > 0 ? (uint32_t)r : r == 0 ? 1 : 0;
	r = kvmnc_kvm_check(fd, KVM_CAP_NR_MEMSLOTS);
	f->memslots = r > 0 ? (uint32_t)r : 0;
}

/*
 * What the files could not say, KVM's quirk mask can: 6.12.78+ and 6.16+
 * list IGNORE_GUEST_PAT on VMX only with EPT and a self-snooping CPU
 * (vmx_hardware_setup), and on SVM only with NPT. An unreadable fact
 * becomes known only from that word, never from a guess.
 */
static void infer_from_quirk_mask(struct kvmnc_host *hst, int64_t mask)
{
	struct kvmnc_cpu *c = &hst->cpu;

	if (mask < 0 || !(mask & KVMNC_QUIRK_IGNORE_GUEST_PAT) || c->cpuid_err)
		return;
	if (c->vendor != KVMNC_VENDOR_INTEL && c->vendor != KVMNC_VENDOR_AMD)
		return;
	if (c->tdp < 0 && c->tdp != -ENOENT) {
		c->tdp = 1;
		c->from_quirk_mask = true;
	}
	if (c->vendor == KVMNC_VENDOR_INTEL && (c->self_snoop_err || c->self_snoop < 0)) {
		c->self_snoop = 1;
		c->self_snoop_err = 0;
		c->from_quirk_mask = true;
	}
	hst->feat.tdp = c->tdp;
	hst->feat.self_snoop = c->self_snoop;
}

static void decide(struct kvmnc_host *hst, int64_t mask)
{
	infer_from_quirk_mask(hst, mask);
	decide_native(hst);
	decide_quirk(hst, mask);
	apply_gate(hst);
	decide_wbinvd(hst);
	hst->feat.recommended = kvmnc_recommend(&hst->feat);
}

/* open() errors in the terms the header promises. */
static int node_open_error(int err)
{
	switch (-err) {
	case ENOENT:
	case ENOTDIR: /* "/dev/kvm/": no such directory */
	case ELOOP:
	case ENXIO: /* a node whose driver is gone */
	case ENODEV:
		return kvmnc_err(-ENOENT, "No such KVM node (or a node without its driver)");
	case EISDIR:
	case ETXTBSY:
	case EROFS:
		return -ENOTTY; /* it exists, and is not a KVM node */
	case ENAMETOOLONG:
		return -EINVAL;
	}
	return err; /* EACCES, EPERM, and resource errors (EMFILE, ENOMEM, ...) */
}

/* The node's KVM_GET_API_VERSION failing means "not KVM", unless it says why else. */
static int node_api_error(int err)
{
	if (err == -EPERM || err == -EACCES || err == -ENOMEM || err == -EMFILE || err == -ENFILE ||
	    err == -EAGAIN || err == -EBADF)
		return err;
	return -ENOTTY; /* ENOTTY, EINVAL, tun's EBADFD, ... */
}

/* Probes the node open at @fd; @read_paths: /proc and /sys may be read. */
static int probe_node(const char *path, int fd, bool read_paths, struct kvmnc_host *hst)
{
	struct kvmnc_features *f = &hst->feat;
	int vm_fd, r;
	int64_t mask;

	r = kvmnc_kvm_api_version(fd);
	if (r < 0)
		return node_api_error(r);
	if (r != KVMNC_KVM_API_VERSION) {
		pr_warn("%s: KVM API version %d, expected %d", path, r, KVMNC_KVM_API_VERSION);
		return -EPROTO;
	}
	f->kvm_api_version = r;
	common_facts(hst, fd, read_paths);

	vm_fd = kvmnc_kvm_create_vm(fd, 0);
	if (vm_fd < 0) {
		pr_warn("%s: cannot create a scratch VM: %s", path, strerror(-vm_fd));
		no_trials(hst, vm_fd, "create a scratch VM");
		mask = hst->sys_quirks_mask;
	} else {
		/* The quirk mask is per VM type (TDX differs); ask a VM. */
		mask = kvmnc_kvm_check(vm_fd, KVM_CAP_DISABLE_QUIRKS2);
		/* Before the flag's access trial gives the VM a vCPU: KVM would refuse then. */
		hst->cap_wbinvd = kvmnc_kvm_check(vm_fd, KVM_CAP_X86_EMULATE_WBINVD);
		hst->wbinvd_trial = 1;
		if (hst->cap_wbinvd > 0 && hst->cpu.vendor != KVMNC_VENDOR_NOT_X86 &&
		    !hst->cpu.cpuid_err)
			hst->wbinvd_trial = kvmnc_kvm_enable_wbinvd(vm_fd);
		try_on_vm(hst, fd, vm_fd, false, 0);
		SYS(close, vm_fd);
		f->probed_on = KVMNC_PROBED_SCRATCH_VM;
	}
	decide(hst, mask);
	return 0;
}

static void free_host(struct kvmnc_host *hst)
{
	free(hst->key);
	free(hst);
}

static struct kvmnc_host *cache_find(struct kvmnc_host *hst, const char *key)
{
	for (; hst; hst = hst->next)
		if (!strcmp(hst->key, key))
			return hst;
	return NULL;
}

/* The answer for the node with device number @rdev (0: none), whatever its path. */
static struct kvmnc_host *cache_find_rdev(struct kvmnc_host *hst, uint64_t rdev)
{
	for (; hst && rdev; hst = hst->next)
		if (hst->rdev == rdev)
			return hst;
	return NULL;
}

/*
 * Publishes @hst for @key unless an answer at least as good is there
 * already (a racing prober, or the VM path): then @hst is freed and that
 * one returned. A newer entry goes in front, so it is the one found.
 */
static struct kvmnc_host *cache_add(struct kvmnc_host *hst)
{
	struct kvmnc_host *head = __atomic_load_n(&probe_cache, __ATOMIC_ACQUIRE), *old;

	do {
		old = cache_find(head, hst->key);
		if (!old)
			old = cache_find_rdev(head, hst->rdev);
		if (old && (definitive(&old->feat) || !definitive(&hst->feat))) {
			free_host(hst);
			return old;
		}
		hst->next = head;
	} while (!__atomic_compare_exchange_n(&probe_cache, &head, hst, false, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	return hst;
}

static struct kvmnc_host *new_host(const char *key)
{
	struct kvmnc_host *hst = SYS(calloc, 1, sizeof(*hst));

	if (!hst)
		return NULL;
	hst->key = kvmnc_strdup(key);
	if (!hst->key) {
		free(hst);
		return NULL;
	}
	hst->feat.sz = sizeof(hst->feat);
	return hst;
}

static void copy_host(struct kvmnc_host *out, const struct kvmnc_host *hst)
{
	/* Bytewise, padding included: callers compare what they get with memcmp(). */
	memcpy(out, hst, sizeof(*out));
	out->next = NULL;
	out->key = NULL;
}

/*
 * Definitive answers are cached, and so are answers that could not be
 * completed for a reason that will not go away (a filter refusing the
 * scratch VM): asking again would only repeat the failure. Other failures
 * (EMFILE, ENOMEM) say nothing about the kernel: the next call tries again.
 */
int kvmnc_probe_host(const char *key, int kvm_fd, struct kvmnc_host *out)
{
	struct kvmnc_host *hst;
	uint64_t rdev = 0;
	int fd, r;

	hst = cache_find(__atomic_load_n(&probe_cache, __ATOMIC_ACQUIRE), key);
	if (hst) {
		copy_host(out, hst);
		return 0;
	}
	fd = kvm_fd >= 0 ? kvm_fd : SYS(open, key, O_RDWR);
	if (fd < 0)
		return node_open_error(fd);
	/*
	 * Another path to a node already probed (/dev/./kvm, a symlink, the
	 * caller's fd): its answer, without a scratch VM or a new entry.
	 */
	if (SYS(fd_rdev, fd, &rdev) < 0)
		rdev = 0;
	hst = cache_find_rdev(__atomic_load_n(&probe_cache, __ATOMIC_ACQUIRE), rdev);
	if (hst) {
		copy_host(out, hst);
		r = 0;
		goto out;
	}
	hst = new_host(key);
	if (!hst) {
		r = -ENOMEM;
		goto out;
	}
	hst->rdev = rdev;
	/* With the caller's node fd (KVMNC_OPEN_KVM_FD) no path is opened at all. */
	r = probe_node(key, fd, kvm_fd < 0, hst);
	if (r < 0) {
		free_host(hst);
	} else if (definitive(&hst->feat) || hst->trial_err_final) {
		hst = cache_add(hst);
		copy_host(out, hst);
	} else {
		copy_host(out, hst);
		free_host(hst);
	}
out:
	if (kvm_fd < 0)
		SYS(close, fd);
	return r;
}

void kvmnc_probe_host_from_vm(const char *key, int vm_fd, int node_err, struct kvmnc_host *out)
{
	struct kvmnc_host *hst = cache_find(__atomic_load_n(&probe_cache, __ATOMIC_ACQUIRE), key);

	if (hst) {
		copy_host(out, hst);
		return;
	}
	memset(out, 0, sizeof(*out));
	out->feat.sz = sizeof(out->feat);
	/* A VM fd answers KVM_CHECK_EXTENSION for every capability asked here. */
	common_facts(out, vm_fd, true);
	no_trials(out, node_err, "open the KVM node");
	out->trial_err_final = true;
	decide(out, out->sys_quirks_mask);
}

/* VM types with protected state (TDX, SEV-ES, SNP) have no read-only memslots. */
static bool vm_is_tdx(const struct kvmnc_host *hst, const struct kvmnc_vm_facts *vf)
{
	return cpu_is(hst, KVMNC_VENDOR_INTEL) && vf->readonly_mem == 0;
}

int kvmnc_probe_vm(const char *key, struct kvmnc_host *hst, int vm_fd, struct kvmnc_vm_facts *vf)
{
	struct kvmnc_features *f = &hst->feat;
	bool host_definitive = definitive(f), tried = false;
	int r;

	vf->quirks = kvmnc_kvm_check(vm_fd, KVM_CAP_DISABLE_QUIRKS2);
	vf->mem_attrs = kvmnc_kvm_check(vm_fd, KVMNC_CAP_MEMORY_ATTRIBUTES);
	vf->readonly_mem = kvmnc_kvm_check(vm_fd, KVM_CAP_READONLY_MEM);
	r = kvmnc_kvm_check(vm_fd, KVM_CAP_MULTI_ADDRESS_SPACE);
	vf->address_spaces = r > 0 ? r : r == 0 ? 1 : 0;
	vf->memslots = kvmnc_kvm_check(vm_fd, KVM_CAP_NR_MEMSLOTS);
	vf->flag_cap = -1;
	vf->wbinvd = kvmnc_kvm_check(vm_fd, KVM_CAP_X86_EMULATE_WBINVD);

	f->vm_flags = 0;
	if (vf->mem_attrs > 0 && (vf->mem_attrs & KVMNC_MEMORY_ATTRIBUTE_PRIVATE))
		f->vm_flags |= KVMNC_VM_PRIVATE_MEMORY;
	if (vf->readonly_mem == 0)
		f->vm_flags |= KVMNC_VM_PROTECTED_STATE;
	if (vf->address_spaces > 0)
		f->address_spaces = (uint32_t)vf->address_spaces;
	if (vf->memslots > 0)
		f->memslots = (uint32_t)vf->memslots;

	/*
	 * What the scratch VM could not answer, this VM can. A VM type with
	 * private memory may refuse what a default VM takes: try there too.
	 */
	if (hst->trial_err ||
	    ((f->vm_flags & KVMNC_VM_PRIVATE_MEMORY) &&
	     (f->memslot_flag.supported == 1 || f->virtio_device.supported == 1))) {
		try_on_vm(hst, -1, vm_fd, true, vf->memslots > 0 ? (uint32_t)vf->memslots : 0);
		f->probed_on = KVMNC_PROBED_CALLER_VM;
		tried = true;
		if (hst->trial_slot_left)
			return -ENOTRECOVERABLE;
	}

	if (f->memslot_flag.supported == 1 && f->memslot_flag_cap) {
		vf->flag_cap = kvmnc_kvm_check(vm_fd, f->memslot_flag_cap);
		if (vf->flag_cap == 0)
			set_status(f, KVMNC_REASON_VM_TYPE, &f->memslot_flag, 0,
				   "this VM answers 0 for capability %u: the flag is refused for "
				   "its VM type",
				   f->memslot_flag_cap);
	}
	if (vf->quirks >= 0 &&
	    ((uint64_t)vf->quirks != f->quirks_mask || f->guest_pat_quirk.supported < 0)) {
		infer_from_quirk_mask(hst, vf->quirks);
		decide_quirk(hst, vf->quirks);
	}
	if (tried)
		apply_gate(hst);
	/* The VM's own word on WBINVD emulation: a VM type may refuse what the host has. */
	if (vf->wbinvd >= 0 &&
	    (f->wbinvd_emulation.supported < 0 || (vf->wbinvd > 0) != (hst->cap_wbinvd > 0))) {
		bool host_yes = f->wbinvd_emulation.supported == 1;

		hst->cap_wbinvd = vf->wbinvd;
		hst->wbinvd_trial = 1;
		decide_wbinvd(hst);
		if (host_yes && vf->wbinvd == 0)
			set_status(
				f, KVMNC_REASON_VM_TYPE, &f->wbinvd_emulation, 0,
				"this VM answers 0 for capability %u: WBINVD emulation is refused "
				"for its VM type",
				KVM_CAP_X86_EMULATE_WBINVD);
	}

	if (vm_is_tdx(hst, vf)) {
		/* TDX forces the quirk off per VM; the mask is the host's. */
		set_status(f, 0, &f->native, 1,
			   "Intel VM with protected state (TDX): KVM honors guest PAT for it, "
			   "the IGNORE_GUEST_PAT quirk is off from VM creation");
		if (f->guest_pat_quirk.supported == 1)
			set_status(f, KVMNC_REASON_NATIVE_ALREADY, &f->guest_pat_quirk, 0,
				   "already off for this VM type (TDX): guest PAT is honored "
				   "natively");
	}
	f->recommended = kvmnc_recommend(f);

	/* A default-type VM answers for the host: later opens and probes need not ask. */
	if (tried && !host_definitive && definitive(f) && f->vm_flags == 0) {
		struct kvmnc_host *pub = SYS(malloc, sizeof(*pub));

		if (pub) {
			copy_host(pub, hst);
			pub->trial_err = 0; /* the trials have run, on this VM */
			pub->key = kvmnc_strdup(key);
			if (pub->key)
				cache_add(pub);
			else
				free(pub);
		}
	}
	return 0;
}

int kvmnc_probe_uc_vram(struct kvmnc_host *hst)
{
	struct kvmnc_features *f = &hst->feat;
	int changed = 0;

	for (size_t i = 0; i < KVMNC_NMECH; i++) {
		const struct kvmnc_mech_entry *m = &kvmnc_mechanisms[i];
		struct kvmnc_mech_status *st = (struct kvmnc_mech_status *)((char *)f + m->status);

		/* "No" already says something about the host; keep it. */
		if (m->scope == KVMNC_SCOPE_SLOT || st->supported == 0)
			continue;
		changed += st->supported == 1;
		set_status(f, KVMNC_REASON_UC_VRAM_DISPLAY, st, 0,
			   "not for this VM: it has a display that maps VRAM uncached "
			   "(KVMNC_OPEN_UC_VRAM_DISPLAY), and this would honor guest PAT for all "
			   "its memory; the host: %s",
			   st->reason);
	}
	f->recommended = kvmnc_recommend(f);
	return changed;
}

KVMNC_API int kvmnc_probe(const char *dev_path, struct kvmnc_features *out)
{
	struct kvmnc_host hst;
	int r;

	if (!out || (dev_path && !dev_path[0]))
		return -EINVAL;
	r = kvmnc_struct_out_ok(out);
	if (r < 0)
		return r;
	if (dev_path && strnlen(dev_path, PATH_MAX) == PATH_MAX)
		return -EINVAL;
	r = kvmnc_probe_host(dev_path ? dev_path : KVMNC_DEFAULT_DEV, -1, &hst);
	if (r < 0)
		return r;
	kvmnc_struct_out(out, &hst.feat, sizeof(hst.feat));
	return 0;
}

void kvmnc_probe_reset(void)
{
	struct kvmnc_host *hst, *next;

	hst = __atomic_exchange_n(&probe_cache, NULL, __ATOMIC_ACQ_REL);
	for (; hst; hst = next) {
		next = hst->next;
		free_host(hst);
	}
	kvmnc_cpu_reset();
}

unsigned int kvmnc_probe_cache_entries(void)
{
	unsigned int n = 0;

	for (struct kvmnc_host *hst = __atomic_load_n(&probe_cache, __ATOMIC_ACQUIRE); hst;
	     hst = hst->next)
		n++;
	return n;
}
