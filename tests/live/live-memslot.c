// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Memslots through the library on the real kernel, with a real-mode guest
 * writing into the region to show it is mapped, and every mechanism the
 * probe reports usable for regions exercised for real.
 */
#include <sys/mman.h>

#include "live.h"

#define CODE_GPA 0x1000
#define NC_GPA	 0x10000
#define SLOT_LEN 0x10000

/* mov ax,0x1000; mov ds,ax; mov byte [0],0x42; hlt */
static const unsigned char guest_code[] = {0xb8, 0x00, 0x10, 0x8e, 0xd8, 0xc6,
					   0x06, 0x00, 0x00, 0x42, 0xf4};

static void one_mechanism(int kvm, const struct kvmnc_features *f, int mech)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE, .mechanism = mech);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	unsigned char *low, *ncmem, byte = 0;
	struct kvmnc_region lr, nr;
	const char *name = mech ? kvmnc_mechanism_name(mech) : "auto";
	struct kvmnc *h = NULL;
	int vm = t_create_vm(kvm), r, exit_reason;

	low = mmap(NULL, SLOT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ncmem = mmap(NULL, SLOT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(low + CODE_GPA, guest_code, sizeof(guest_code));

	r = kvmnc_open(vm, &o, &h);
	if (mech && r == -EOPNOTSUPP) {
		t_check(true, "%s: forced open refused, as the probe said", name);
		goto out;
	}
	T_EQ(r, 0, "open");
	if (r)
		goto out;
	kvmnc_get_info(h, &info);
	if (mech)
		T_EQ(info.region_mechanism, mech, "forced mechanism is the region mechanism");
	lr = t_region(0, 0, SLOT_LEN, low, false);
	nr = t_region(1, NC_GPA, SLOT_LEN, ncmem, true);
	T_EQ(kvmnc_set_region(h, &lr), 0, "plain region");
	r = kvmnc_set_region(h, &nr);
	if (info.region_mechanism == KVMNC_MECH_NONE) {
		T_EQ(r, -EOPNOTSUPP, "no mechanism: non-coherent region refused");
		nr.kvmnc_flags = 0;
		T_EQ(kvmnc_set_region(h, &nr), 0, "the same region as plain memory");
	} else {
		printf("# %s: non-coherent region via %s\n", name,
		       kvmnc_mechanism_name(info.region_mechanism));
		T_EQ(r, 0, "non-coherent region");
		T_EQ(kvmnc_is_noncoherent(h), 1, "VM now holds non-coherent memory");
		if (info.region_mechanism == KVMNC_MECH_MEMSLOT_FLAG)
			/* The kernel's flag is immutable: a flags-only update without it fails. */
			T_EQ(t_raw_region(vm, &nr, 0), -EINVAL,
			     "kernel keeps KVM_MEM_NON_COHERENT_DMA on the slot");
	}

	exit_reason = t_run_guest(kvm, vm, CODE_GPA);
	T_EQ(exit_reason, KVM_EXIT_HLT, "guest writes into the region and halts");
	T_EQ(kvmnc_copy_from_guest(h, &byte, ncmem, 1), 0, "copy_from_guest");
	T_EQ(byte, 0x42, "the guest's byte is seen through the coherent read");

	/* Move, then delete, through the same call. */
	nr.guest_phys_addr = 0x20000;
	T_EQ(kvmnc_set_region(h, &nr), 0, "move the region");
	nr.memory_size = 0;
	T_EQ(kvmnc_set_region(h, &nr), 0, "delete the region");
	if (info.region_mechanism != KVMNC_MECH_GUEST_PAT_QUIRK)
		T_EQ(kvmnc_is_noncoherent(h), 0, "no non-coherent memory left");
	T_EQ(kvmnc_close(h), 0, "close");
out:
	munmap(low, SLOT_LEN);
	munmap(ncmem, SLOT_LEN);
	close(vm);
	(void)f;
}

int main(void)
{
	struct kvmnc_features f = {.sz = sizeof(f)};
	int kvm = t_kvm_fd();
	int fds = t_count_fds();

	if (kvmnc_probe(NULL, &f) < 0)
		return T_EXIT_FAIL;
	one_mechanism(kvm, &f, KVMNC_MECH_NONE);
	/* Every mechanism the probe calls usable is exercised, or refused if not. */
	one_mechanism(kvm, &f, KVMNC_MECH_MEMSLOT_FLAG);
	one_mechanism(kvm, &f, KVMNC_MECH_VIRTIO_DEVICE);
	one_mechanism(kvm, &f, KVMNC_MECH_NATIVE);
	T_EQ(t_count_fds(), fds, "no fd left behind");
	close(kvm);
	return t_done();
}
