// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which mechanism does this kernel offer? Capability numbers only hint (236
 * and 239 mean different things on ChromeOS and upstream, device type
 * numbers are out-of-tree ABI), so everything that can be tried is tried on
 * one scratch VM, once per process and KVM node.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat-kvm.h"
#include "internal.h"

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvmnc_host *probe_cache;

static void set_status(struct kvmnc_mech_status *st, int supported, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_status(struct kvmnc_mech_status *st, int supported, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
	st->supported = supported;
}

static int check_ext(int fd, unsigned long cap)
{
	return SYS(ioctl, fd, KVM_CHECK_EXTENSION, cap);
}

static void probe_cpu(struct kvmnc_host *hst)
{
	struct kvmnc_features *f = &hst->feat;
	uint32_t r[4];

	int err;

	f->self_snoop = -1;
	hst->vendor = KVMNC_VENDOR_NOT_X86;
	err = SYS(cpuid, 0, 0, r);
	if (err < 0) {
		if (err != -EOPNOTSUPP)
			hst->cpuid_err = err;
		return;
	}

	/* The vendor string is EBX, EDX, ECX. */
	memcpy(f->cpu_vendor, &r[1], 4);
	memcpy(f->cpu_vendor + 4, &r[3], 4);
	memcpy(f->cpu_vendor + 8, &r[2], 4);
	f->cpu_vendor[12] = '\0';
	if (!strcmp(f->cpu_vendor, "AuthenticAMD") || !strcmp(f->cpu_vendor, "HygonGenuine"))
		hst->vendor = KVMNC_VENDOR_AMD;
	else if (!strcmp(f->cpu_vendor, "GenuineIntel") || !strcmp(f->cpu_vendor, "CentaurHauls") ||
		 !strcmp(f->cpu_vendor, "  Shanghai  "))
		hst->vendor = KVMNC_VENDOR_INTEL;
	else
		hst->vendor = KVMNC_VENDOR_UNKNOWN;

	if (SYS(cpuid, 1, 0, r) == 0)
		f->self_snoop = !!(r[3] & (1u << 27));
}

/* 1 or 0 for a bool module parameter, negative errno if it cannot be read. */
static int read_bool_param(const char *path)
{
	char buf[8];
	ssize_t n = SYS(read_file, path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1')
		return 1;
	if (buf[0] == 'N' || buf[0] == 'n' || buf[0] == '0')
		return 0;
	return -EINVAL;
}

static void probe_tdp(struct kvmnc_host *hst)
{
	const char *path = NULL;

	if (hst->vendor == KVMNC_VENDOR_INTEL)
		path = "/sys/module/kvm_intel/parameters/ept";
	else if (hst->vendor == KVMNC_VENDOR_AMD)
		path = "/sys/module/kvm_amd/parameters/npt";
	hst->feat.tdp = path ? read_bool_param(path) : -EOPNOTSUPP;
}

static const char *tdp_name(int vendor)
{
	return vendor == KVMNC_VENDOR_AMD ? "NPT" : "EPT";
}

static const char *module_name(int vendor)
{
	return vendor == KVMNC_VENDOR_AMD ? "kvm_amd" : "kvm_intel";
}

static void decide_native(struct kvmnc_host *hst)
{
	struct kvmnc_features *f = &hst->feat;
	struct kvmnc_mech_status *st = &f->native;

	if (hst->cpuid_err) {
		set_status(st, hst->cpuid_err, "could not identify the CPU: %s",
			   strerror(-hst->cpuid_err));
		return;
	}
	switch (hst->vendor) {
	case KVMNC_VENDOR_NOT_X86:
		set_status(st, 0,
			   "memory-type handling on this architecture has not been "
			   "checked by libkvmnc; reported as unsupported");
		return;
	case KVMNC_VENDOR_INTEL:
		set_status(st, 0,
			   "Intel VMX: KVM maps guest RAM as WB with IPAT (guest PAT "
			   "ignored) unless a mechanism tells it otherwise");
		return;
	case KVMNC_VENDOR_UNKNOWN:
		set_status(st, 0, "unknown x86 vendor \"%s\": not known to honor guest PAT",
			   f->cpu_vendor);
		return;
	}

	if (f->tdp == 1) {
		set_status(st, 1,
			   "AMD NPT combines guest PAT with the host memory type: "
			   "guest WC/UC reaches the hardware, nothing to enable");
	} else if (f->tdp == 0) {
		set_status(st, 0,
			   "AMD host with NPT disabled (kvm_amd npt=N): shadow paging "
			   "ignores guest PAT");
	} else if (f->tdp == -ENOENT && hst->sys_quirks_mask < 0) {
		set_status(st, (int)hst->sys_quirks_mask, "could not read the quirk mask: %s",
			   strerror((int)-hst->sys_quirks_mask));
	} else if (f->tdp == -ENOENT && (hst->sys_quirks_mask & KVMNC_QUIRK_IGNORE_GUEST_PAT)) {
		/* 6.12.78+ lists the quirk on SVM only when NPT is on. */
		set_status(st, 1,
			   "AMD host; the IGNORE_GUEST_PAT quirk is listed, so KVM uses "
			   "NPT, which honors guest PAT");
	} else if (f->tdp == -ENOENT) {
		set_status(st, 0,
			   "AMD host, but KVM is not kvm_amd with NPT (no "
			   "/sys/module/kvm_amd): shadow paging ignores guest PAT");
	} else {
		set_status(st, f->tdp, "could not read kvm_amd's npt parameter: %s",
			   strerror(-f->tdp));
	}
}

void kvmnc_decide_quirk(const struct kvmnc_host *hst, struct kvmnc_features *f, int64_t smask)
{
	struct kvmnc_mech_status *st = &f->guest_pat_quirk;
	unsigned long long mask = (unsigned long long)smask;
	int vendor = hst->vendor;

	if (smask < 0) {
		set_status(st, (int)smask, "could not read KVM_CAP_DISABLE_QUIRKS2: %s",
			   strerror((int)-smask));
		return;
	}
	f->quirks_mask = mask;
	if (hst->cpuid_err && (mask & KVMNC_QUIRK_IGNORE_GUEST_PAT)) {
		/* Listed on Intel it works; listed on AMD it is moot: need the vendor. */
		set_status(st, hst->cpuid_err, "could not identify the CPU: %s",
			   strerror(-hst->cpuid_err));
		return;
	}
	if (vendor == KVMNC_VENDOR_NOT_X86) {
		set_status(st, 0, "the guest-PAT quirk exists only on x86");
		return;
	}
	if (mask == 0) {
		set_status(st, 0, "kernel has no KVM_CAP_DISABLE_QUIRKS2 (older than 5.16)");
		return;
	}
	if (mask & KVMNC_QUIRK_IGNORE_GUEST_PAT) {
		if (vendor == KVMNC_VENDOR_AMD)
			set_status(st, 0,
				   "quirk mask 0x%llx lists IGNORE_GUEST_PAT, but on AMD "
				   "NPT it is off from VM creation: guest PAT is honored "
				   "natively",
				   mask);
		else
			set_status(st, 1,
				   "quirk mask 0x%llx includes IGNORE_GUEST_PAT (bit 9): "
				   "EPT with a self-snooping CPU",
				   mask);
		return;
	}

	if (vendor == KVMNC_VENDOR_INTEL && f->self_snoop == 0)
		set_status(st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: the CPU has no "
			   "self-snoop, so honoring guest PAT would be unsafe",
			   mask);
	else if (f->tdp == 0)
		set_status(st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: %s is disabled "
			   "(shadow paging always ignores guest PAT)",
			   mask, tdp_name(vendor));
	else if (f->tdp < 0)
		set_status(st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: KVM is not %s "
			   "here (no /sys/module/%s), so no EPT/NPT; shadow paging "
			   "always ignores guest PAT",
			   mask, module_name(vendor), module_name(vendor));
	else
		set_status(st, 0,
			   "quirk mask 0x%llx lacks IGNORE_GUEST_PAT: kernel older "
			   "than 6.16 / 6.12.78",
			   mask);
}

static void probe_device(struct kvmnc_host *hst, int vm_fd)
{
	struct kvmnc_mech_status *st = &hst->feat.virtio_device;
	struct kvm_create_device cd = {
		.type = KVM_DEV_TYPE_VIRTIO,
		.flags = KVM_CREATE_DEVICE_TEST,
	};
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VIRTIO_NONCOHERENT,
		.attr = KVM_DEV_VIRTIO_NONCOHERENT_SET,
	};
	int r, dev_fd;

	hst->feat.virtio_device_type = KVM_DEV_TYPE_VIRTIO;
	r = SYS(ioctl, vm_fd, KVM_CREATE_DEVICE, (unsigned long)&cd);
	if (r == -ENODEV) {
		set_status(st, 0,
			   "KVM device type %u is not registered: kernel without the "
			   "KVM VIRTIO device",
			   KVM_DEV_TYPE_VIRTIO);
		return;
	}
	if (r < 0) {
		set_status(st, r, "could not test-create KVM device type %u: %s",
			   KVM_DEV_TYPE_VIRTIO, strerror(-r));
		return;
	}

	/* The number is out-of-tree ABI: only the attribute proves the device. */
	cd.flags = 0;
	cd.fd = 0;
	r = SYS(ioctl, vm_fd, KVM_CREATE_DEVICE, (unsigned long)&cd);
	if (r < 0) {
		set_status(st, r,
			   "KVM device type %u is registered but could not be created: "
			   "%s",
			   KVM_DEV_TYPE_VIRTIO, strerror(-r));
		return;
	}
	dev_fd = (int)cd.fd;
	r = SYS(ioctl, dev_fd, KVM_HAS_DEVICE_ATTR, (unsigned long)&attr);
	SYS(close, dev_fd);
	/* EPERM is KVM's answer for a device without has_attr: not ours either. */
	if (r == 0)
		set_status(st, 1,
			   "KVM_DEV_TYPE_VIRTIO (%u) created on a scratch VM and has "
			   "KVM_DEV_VIRTIO_NONCOHERENT_SET",
			   KVM_DEV_TYPE_VIRTIO);
	else if (r == -ENXIO || r == -EINVAL || r == -ENODEV || r == -ENOTTY || r == -EPERM)
		set_status(st, 0,
			   "KVM device type %u exists but is not the KVM VIRTIO device "
			   "(no NONCOHERENT_SET attribute: %s)",
			   KVM_DEV_TYPE_VIRTIO, strerror(-r));
	else
		set_status(st, r, "could not query KVM device type %u: %s", KVM_DEV_TYPE_VIRTIO,
			   strerror(-r));
}

/* What a capability that was not confirmed by trial means on this kernel. */
static const char *cap_note(int cap236, int cap239, char *note, size_t len)
{
	note[0] = '\0';
	if (cap239 > 0)
		snprintf(note, len, "; capability 239 = %d means something else here", cap239);
	else if (cap236 > 0)
		snprintf(note, len,
			 "; capability 236 = %d is KVM_CAP_PRE_FAULT_MEMORY here, not "
			 "ChromeOS's flag capability",
			 cap236);
	return note;
}

static void probe_flag(struct kvmnc_host *hst, int vm_fd, int cap236, int cap239)
{
	struct kvmnc_mech_status *st = &hst->feat.memslot_flag;
	const char *ioc =
		hst->user_memory2 ? "KVM_SET_USER_MEMORY_REGION2" : "KVM_SET_USER_MEMORY_REGION";
	char note[96];
	void *page;
	int r;

	r = SYS(mmap_anon, KVMNC_PAGE_SIZE, &page);
	if (r < 0) {
		set_status(st, r, "could not map a page for the trial memslot: %s", strerror(-r));
		return;
	}

	if (hst->user_memory2) {
		struct kvm_userspace_memory_region2 m = {
			.flags = KVM_MEM_NON_COHERENT_DMA,
			.memory_size = KVMNC_PAGE_SIZE,
			.userspace_addr = (uintptr_t)page,
		};
		r = SYS(ioctl, vm_fd, KVM_SET_USER_MEMORY_REGION2, (unsigned long)&m);
	} else {
		/* ChromeOS kernels before 6.8 take the flag in the v1 ioctl. */
		struct kvm_userspace_memory_region m = {
			.flags = KVM_MEM_NON_COHERENT_DMA,
			.memory_size = KVMNC_PAGE_SIZE,
			.userspace_addr = (uintptr_t)page,
		};
		r = SYS(ioctl, vm_fd, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m);
	}
	SYS(munmap, page, KVMNC_PAGE_SIZE);

	if (r == 0) {
		hst->feat.memslot_flag_cap = cap239 > 0	  ? KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA
					     : cap236 > 0 ? KVMNC_CAP_NONCOHERENT_DMA_CROS_OLD
							  : 0;
		if (hst->feat.memslot_flag_cap)
			set_status(st, 1,
				   "KVM_MEM_NON_COHERENT_DMA accepted by %s on a "
				   "scratch VM (advertised by capability %u)",
				   ioc, hst->feat.memslot_flag_cap);
		else
			set_status(st, 1,
				   "KVM_MEM_NON_COHERENT_DMA accepted by %s on a "
				   "scratch VM (no capability advertises it)",
				   ioc);
	} else if (r == -EINVAL) {
		set_status(st, 0, "KVM_MEM_NON_COHERENT_DMA (0x8) refused by %s%s", ioc,
			   cap_note(cap236, cap239, note, sizeof(note)));
	} else {
		set_status(st, r, "trial memslot with KVM_MEM_NON_COHERENT_DMA failed: %s",
			   strerror(-r));
	}
}

int kvmnc_recommend(const struct kvmnc_features *f)
{
	if (f->native.supported == 1)
		return KVMNC_MECH_NATIVE;
	if (f->memslot_flag.supported == 1)
		return KVMNC_MECH_MEMSLOT_FLAG;
	if (f->virtio_device.supported == 1)
		return KVMNC_MECH_VIRTIO_DEVICE;
	if (f->guest_pat_quirk.supported == 1)
		return KVMNC_MECH_GUEST_PAT_QUIRK;
	return KVMNC_MECH_NONE;
}

static int probe_node(const char *path, struct kvmnc_host *hst)
{
	struct kvmnc_features *f = &hst->feat;
	int fd, vm_fd, r, um2, cap236, cap239;
	struct utsname u;
	int64_t mask;

	fd = SYS(open, path, O_RDWR);
	if (fd < 0)
		return fd;

	r = SYS(ioctl, fd, KVM_GET_API_VERSION, 0);
	if (r < 0) {
		r = (r == -ENOTTY || r == -EINVAL) ? -ENOTTY : r;
		goto out;
	}
	if (r != KVMNC_KVM_API_VERSION) {
		pr_warn("%s: KVM API version %d, expected %d", path, r, KVMNC_KVM_API_VERSION);
		r = -EPROTO;
		goto out;
	}
	f->kvm_api_version = r;

	if (SYS(uname, &u) == 0)
		snprintf(f->kernel_release, sizeof(f->kernel_release), "%s", u.release);
	probe_cpu(hst);
	probe_tdp(hst);

	um2 = check_ext(fd, KVM_CAP_USER_MEMORY2);
	hst->user_memory2 = um2 > 0;
	cap236 = check_ext(fd, KVMNC_CAP_NONCOHERENT_DMA_CROS_OLD);
	cap239 = check_ext(fd, KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA);
	hst->sys_quirks_mask = check_ext(fd, KVM_CAP_DISABLE_QUIRKS2);

	vm_fd = SYS(ioctl, fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0) {
		const char *why = strerror(-vm_fd);

		pr_warn("%s: cannot create a scratch VM: %s", path, why);
		set_status(&f->virtio_device, vm_fd,
			   "could not create a scratch VM to try the device: %s", why);
		set_status(&f->memslot_flag, vm_fd,
			   "could not create a scratch VM to try the flag: %s", why);
		mask = hst->sys_quirks_mask;
	} else {
		/* The quirk mask is per VM type (TDX differs); ask a VM. */
		mask = check_ext(vm_fd, KVM_CAP_DISABLE_QUIRKS2);
		probe_device(hst, vm_fd);
		if (um2 < 0)
			set_status(&f->memslot_flag, um2,
				   "could not tell which memslot ioctl to try: %s", strerror(-um2));
		else
			probe_flag(hst, vm_fd, cap236, cap239);
		SYS(close, vm_fd);
	}
	decide_native(hst);
	kvmnc_decide_quirk(hst, f, mask);
	f->recommended = kvmnc_recommend(f);
	r = 0;
out:
	SYS(close, fd);
	return r;
}

static bool definitive(const struct kvmnc_features *f)
{
	return f->native.supported >= 0 && f->memslot_flag.supported >= 0 &&
	       f->virtio_device.supported >= 0 && f->guest_pat_quirk.supported >= 0;
}

static void free_host(struct kvmnc_host *hst)
{
	free(hst->path);
	free(hst);
}

/*
 * Only definitive answers are cached: a scratch VM that failed for EMFILE or
 * ENOMEM says nothing about the kernel, and the next call should try again.
 * An entry that is not cached is handed to the caller, who frees it.
 */
static int probe_locked(const char *path, struct kvmnc_host **out, bool *cached)
{
	struct kvmnc_host *hst;
	int r;

	for (hst = probe_cache; hst; hst = hst->next) {
		if (!strcmp(hst->path, path)) {
			*out = hst;
			*cached = true;
			return 0;
		}
	}

	hst = calloc(1, sizeof(*hst));
	if (!hst)
		return -ENOMEM;
	hst->path = strdup(path);
	if (!hst->path) {
		free(hst);
		return -ENOMEM;
	}
	hst->feat.sz = sizeof(hst->feat);
	r = probe_node(path, hst);
	if (r < 0) {
		free_host(hst);
		return r;
	}
	*cached = definitive(&hst->feat);
	if (*cached) {
		hst->next = probe_cache;
		probe_cache = hst;
	}
	*out = hst;
	return 0;
}

/* Copies the answer out, so that uncached entries can be freed at once. */
int kvmnc_probe_host(const char *path, struct kvmnc_host *out)
{
	struct kvmnc_host *hst;
	bool cached = false;
	int r;

	pthread_mutex_lock(&probe_lock);
	r = probe_locked(path ? path : KVMNC_DEFAULT_DEV, &hst, &cached);
	if (r == 0) {
		*out = *hst;
		out->next = NULL;
		out->path = NULL;
		if (!cached)
			free_host(hst);
	}
	pthread_mutex_unlock(&probe_lock);
	return r;
}

KVMNC_API int kvmnc_probe(const char *dev_path, struct kvmnc_features *out)
{
	struct kvmnc_host hst;
	int r;

	if (!out || out->sz < sizeof(out->sz) || (dev_path && !dev_path[0]))
		return -EINVAL;

	r = kvmnc_probe_host(dev_path, &hst);
	if (r < 0)
		return r;
	kvmnc_copy_out(out, &hst.feat, sizeof(hst.feat));
	return 0;
}

void kvmnc_probe_reset(void)
{
	struct kvmnc_host *hst, *next;

	pthread_mutex_lock(&probe_lock);
	for (hst = probe_cache; hst; hst = next) {
		next = hst->next;
		free_host(hst);
	}
	probe_cache = NULL;
	pthread_mutex_unlock(&probe_lock);
}
