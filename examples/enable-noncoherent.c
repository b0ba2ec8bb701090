// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * enable-noncoherent: what a VMM does to give a device model non-coherent
 * DMA with libkvmnc.
 *
 *   cc enable-noncoherent.c $(pkg-config --cflags --libs libkvmnc)
 *
 * Exit status: 0 done, 1 this host offers no mechanism (explained on
 * stderr), 2 error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kvmnc.h>

#define RAM_SIZE  (64UL << 20)
#define BLOB_GPA  (1ULL << 32)
#define BLOB_SIZE (2UL << 20)

static void explain(const struct kvmnc_features *f)
{
	fprintf(stderr, "This host offers no way to honor guest memory types:\n");
	fprintf(stderr, "  virtio_device:   %s\n", f->virtio_device.reason);
	fprintf(stderr, "  memslot_flag:    %s\n", f->memslot_flag.reason);
	fprintf(stderr, "  guest_pat_quirk: %s\n", f->guest_pat_quirk.reason);
	fprintf(stderr, "  native:          %s\n", f->native.reason);
	fprintf(stderr, "Run the device model with coherent (snooped) DMA instead.\n");
}

static void logger(int level, const char *msg, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "libkvmnc[%d]: %s\n", level, msg);
}

int main(void)
{
	/*
	 * Accept VM-wide scope (the VIRTIO device), not the irreversible quirk,
	 * and say up front that a device model will be enabled.
	 */
	KVMNC_OPTS(kvmnc_open_opts, opts, .scope = KVMNC_SCOPE_VM, .flags = KVMNC_OPEN_DEVICES);
	KVMNC_OPTS(kvmnc_handle_info, info);
	KVMNC_OPTS(kvmnc_features, f);
	struct kvmnc_region ram = {.sz = sizeof(ram)}, blob = {.sz = sizeof(blob)};
	int kvm, vm, r, ret = 2;
	struct kvmnc *h = NULL;
	void *ram_mem, *blob_mem;

	kvmnc_set_log(logger, KVMNC_LOG_WARN, NULL);

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "/dev/kvm: %s\n", strerror(errno));
		return 2;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "KVM_CREATE_VM: %s\n", strerror(errno));
		goto out_kvm;
	}

	/* Right after KVM_CREATE_VM, before memslots and vCPUs. */
	r = kvmnc_open(vm, &opts, &h);
	if (r < 0) {
		fprintf(stderr, "kvmnc_open: %s\n", kvmnc_strerror(r));
		goto out_vm;
	}
	kvmnc_get_info(h, &info);
	kvmnc_get_features(h, &f);
	printf("kernel %s: regions use %s, devices use %s (recommended: %s)\n", f.kernel_release,
	       kvmnc_mechanism_name(info.region_mechanism),
	       kvmnc_mechanism_name(info.device_mechanism), kvmnc_mechanism_name(f.recommended));

	ram_mem = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	blob_mem = mmap(NULL, BLOB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ram_mem == MAP_FAILED || blob_mem == MAP_FAILED) {
		perror("mmap");
		goto out_handle;
	}

	/* Guest RAM: plain, passes straight through. */
	ram.slot = 0;
	ram.memory_size = RAM_SIZE;
	ram.userspace_addr = (uintptr_t)ram_mem;
	r = kvmnc_set_region(h, &ram);
	if (r < 0) {
		fprintf(stderr, "guest RAM: %s\n", kvmnc_strerror(r));
		goto out_handle;
	}

	/* A host GPU blob the guest maps WC: non-coherent. */
	blob.slot = 1;
	blob.guest_phys_addr = BLOB_GPA;
	blob.memory_size = BLOB_SIZE;
	blob.userspace_addr = (uintptr_t)blob_mem;
	blob.kvmnc_flags = KVMNC_REGION_NONCOHERENT;
	r = kvmnc_set_region(h, &blob);
	if (r == -EOPNOTSUPP) {
		explain(&f);
		ret = 1;
		goto out_handle;
	} else if (r < 0) {
		fprintf(stderr, "blob region: %s\n", kvmnc_strerror(r));
		goto out_handle;
	}
	printf("blob at 0x%llx registered as non-coherent via %s\n", (unsigned long long)BLOB_GPA,
	       kvmnc_mechanism_name(info.region_mechanism));

	/* The device model itself: DMA anywhere in guest memory. */
	r = kvmnc_device_enable(h, 0x0800 /* PCI 00:01.0 */);
	if (r == -EOPNOTSUPP)
		printf("device path: no VM-wide mechanism in scope; blobs use the region path\n");
	else if (r < 0)
		fprintf(stderr, "device enable: %s\n", kvmnc_strerror(r));
	else
		printf("device 00:01.0 enabled via %s\n",
		       kvmnc_mechanism_name(info.device_mechanism));

	printf("VM holds non-coherent memory: %s (migrate with kvmnc_copy_from_guest)\n",
	       kvmnc_is_noncoherent(h) == 1 ? "yes" : "no");
	ret = 0;
out_handle:
	kvmnc_close(h);
out_vm:
	close(vm);
out_kvm:
	close(kvm);
	return ret;
}
