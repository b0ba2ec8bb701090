// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The probe on the real kernel, checked against independent raw ioctls: it
 * must not claim a mechanism the kernel lacks nor miss one it has.
 */
#include <sys/mman.h>

#include "../../libkvmnc/compat-kvm.h"
#include "live.h"

/* Is any number the VIRTIO device is known under (32, 17, 12) registered? */
static int raw_device_registered(int kvm)
{
	static const uint32_t types[] = {KVMNC_DEV_TYPE_VIRTIO_612, KVMNC_DEV_TYPE_VIRTIO_V3,
					 KVMNC_DEV_TYPE_VIRTIO_SEED};
	int vm = t_create_vm(kvm), r = 0;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && r == 0; i++) {
		struct kvm_create_device cd = {.type = types[i], .flags = KVM_CREATE_DEVICE_TEST};

		r = ioctl(vm, KVM_CREATE_DEVICE, &cd) == 0 ? 1 : errno == ENODEV ? 0 : -errno;
	}
	close(vm);
	return r;
}

/* KVM_CAP_X86_EMULATE_WBINVD as a fresh VM answers it. */
static int raw_vm_wbinvd_cap(int kvm)
{
	int vm = t_create_vm(kvm), r;

	r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_X86_EMULATE_WBINVD);
	r = r < 0 ? -errno : r;
	close(vm);
	return r;
}

static int raw_flag_accepted(int kvm)
{
	int vm = t_create_vm(kvm), r;
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2) > 0) {
		struct kvm_userspace_memory_region2 m = {
			.flags = KVM_MEM_NON_COHERENT_DMA,
			.memory_size = 4096,
			.userspace_addr = (uintptr_t)page,
		};
		r = ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m);
	} else {
		struct kvm_userspace_memory_region m = {
			.flags = KVM_MEM_NON_COHERENT_DMA,
			.memory_size = 4096,
			.userspace_addr = (uintptr_t)page,
		};
		r = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m);
	}
	r = r == 0 ? 1 : errno == EINVAL ? 0 : -errno;
	close(vm);
	munmap(page, 4096);
	return r;
}

static long raw_vm_quirks(int kvm)
{
	int vm = t_create_vm(kvm);
	long r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2);

	close(vm);
	return r;
}

/* 1 or 0 when the first flags line of /proc/cpuinfo has or lacks @flag, -1 unknown. */
static int cpuinfo_has(const char *flag)
{
	char line[8192];
	int r = -1;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return -1;
	while (r < 0 && fgets(line, sizeof(line), f)) {
		char *tok, *save;

		if (strncmp(line, "flags", 5))
			continue;
		r = 0;
		for (tok = strtok_r(strchr(line, ':') + 1, " \n", &save); tok;
		     tok = strtok_r(NULL, " \n", &save))
			if (!strcmp(tok, flag))
				r = 1;
	}
	fclose(f);
	return r;
}

int main(void)
{
	struct kvmnc_features f = {.sz = sizeof(f)}, again = {.sz = sizeof(again)};
	const struct t_expect *e = t_expect();
	int kvm = t_kvm_fd(), fds, dev, flag;
	long quirks;

	fds = t_count_fds();
	T_EQ(kvmnc_probe(NULL, &f), 0, "kvmnc_probe(/dev/kvm)");
	T_EQ(t_count_fds(), fds, "probe leaves no fd open");
	printf("# kernel %s, vendor %s, quirks 0x%llx, recommended %s\n", f.kernel_release,
	       f.cpu_vendor, (unsigned long long)f.quirks_mask,
	       kvmnc_mechanism_name(f.recommended));
	printf("# native: %d %s\n# memslot_flag: %d %s\n# virtio_device: %d %s\n"
	       "# guest_pat_quirk: %d %s\n",
	       f.native.supported, f.native.reason, f.memslot_flag.supported, f.memslot_flag.reason,
	       f.virtio_device.supported, f.virtio_device.reason, f.guest_pat_quirk.supported,
	       f.guest_pat_quirk.reason);

	t_check(f.native.supported >= 0 && f.memslot_flag.supported >= 0 &&
			f.virtio_device.supported >= 0 && f.guest_pat_quirk.supported >= 0,
		"every answer is definitive on a working host");
	t_check(f.native.reason[0] && f.memslot_flag.reason[0] && f.virtio_device.reason[0] &&
			f.guest_pat_quirk.reason[0],
		"every mechanism has a reason");

	dev = raw_device_registered(kvm);
	if (dev == 0)
		T_EQ(f.virtio_device.supported, 0,
		     "device types 32, 17, 12 unregistered: device unsupported");
	else
		t_check(dev == 1, "raw test-create of types 32, 17, 12 answers (%d)", dev);
	printf("# wbinvd_emulation: %d %s\n", f.wbinvd_emulation.supported,
	       f.wbinvd_emulation.reason);
	if (f.cpu_vendor[0] && raw_vm_wbinvd_cap(kvm) == 0)
		T_EQ(f.wbinvd_emulation.supported, 0,
		     "capability 251 answers 0 on a VM: no WBINVD emulation");
	t_check(f.wbinvd_emulation.supported != 1 ||
			f.wbinvd_emulation_cap == KVM_CAP_X86_EMULATE_WBINVD,
		"wbinvd_emulation_cap (%u) names the capability that answered",
		f.wbinvd_emulation_cap);
	flag = raw_flag_accepted(kvm);
	T_EQ(f.memslot_flag.supported, flag, "memslot flag answer matches a raw trial");
	quirks = raw_vm_quirks(kvm);
	T_EQ(f.quirks_mask, quirks, "quirk mask matches a raw VM query");
	if (!(quirks & KVMNC_QUIRK_IGNORE_GUEST_PAT))
		T_EQ(f.guest_pat_quirk.supported, 0, "no bit 9: quirk unsupported");
	T_EQ(f.kvm_api_version, 12, "KVM API version");

	/* Cached: same answer again, and no new fd in between. */
	T_EQ(kvmnc_probe(NULL, &again), 0, "second probe");
	t_check(!memcmp(&f, &again, sizeof(f)), "second probe gives the same answer");

	if (e) {
		printf("# expecting %s\n", e->name);
		T_EQ(f.native.supported, e->native, "native as expected");
		T_EQ(f.memslot_flag.supported, e->flag, "memslot_flag as expected");
		T_EQ(f.virtio_device.supported, e->device, "virtio_device as expected");
		T_EQ(f.guest_pat_quirk.supported, e->quirk, "guest_pat_quirk as expected");
		T_EQ(f.recommended, e->recommended, "recommended as expected");
	}

	/* Self-snoop as KVM sees it: the kernel's flags, not the CPUID instruction. */
	if (f.cpu_vendor[0]) {
		int ss = cpuinfo_has("ss");

		if (ss >= 0)
			T_EQ(f.self_snoop, ss, "self_snoop is /proc/cpuinfo's \"ss\"");
	}
	if (f.virtio_device.supported != 1)
		t_check(f.virtio_device_type == 0 || f.virtio_device_type == 32 ||
				f.virtio_device_type == 17 || f.virtio_device_type == 12,
			"virtio_device_type (%u): 0 or a type that answered", f.virtio_device_type);

	/* Every bad path in the header's terms (1.0 gave EISDIR, ENOTDIR, ...). */
	T_EQ(kvmnc_probe("/dev/null", &f), -ENOTTY, "a node that is not KVM");
	T_EQ(kvmnc_probe("/nonexistent/kvm", &f), -ENOENT, "a node that does not exist");
	T_EQ(kvmnc_probe("/dev", &f), -ENOTTY, "a directory is not a KVM node");
	T_EQ(kvmnc_probe("/dev/kvm/", &f), -ENOENT, "a trailing slash names no node");
	if (access("/dev/net/tun", R_OK | W_OK) == 0)
		T_EQ(kvmnc_probe("/dev/net/tun", &f), -ENOTTY, "tun (EBADFD) is not a KVM node");
	{
		char longp[5000];

		memset(longp, 'a', sizeof(longp));
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		T_EQ(kvmnc_probe(longp, &f), -EINVAL, "a path longer than PATH_MAX");
		longp[300] = '\0';
		T_EQ(kvmnc_probe(longp, &f), -EINVAL, "a component longer than NAME_MAX");
	}
	close(kvm);
	return t_done();
}
