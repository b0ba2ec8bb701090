// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A VMM that issues its own memslot ioctls (QEMU, crosvm), on the real
 * kernel: plan, the VMM's ioctl with the planned flags, the outcome, the
 * removal; a raw delete the library did not see; and rejected calls that
 * must not grow the process.
 */
#include <sys/mman.h>

#include "live.h"

#define SLOT_LEN 0x10000

/* Resident set size in KiB, from /proc/self/statm. */
static long rss_kib(void)
{
	long pages = -1, resident = -1;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = -1;
		fclose(f);
	}
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void owned(int kvm, int mech)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE, .mechanism = mech);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);
	const char *name = mech ? kvmnc_mechanism_name(mech) : "auto";
	int vm = t_create_vm(kvm), r;
	struct kvmnc_region pr, nr;
	struct kvmnc *h = NULL;
	void *a = mmap(NULL, SLOT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *b = mmap(NULL, SLOT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	r = kvmnc_open(vm, &o, &h);
	if (mech && r == -EOPNOTSUPP) {
		t_check(true, "%s: not on this host", name);
		goto out;
	}
	T_EQ(r, 0, "open");
	kvmnc_get_info(h, &info);

	/* A plain region the VMM creates: the flags pass through. */
	pr = t_region(0, 0, SLOT_LEN, a, false);
	pr.flags = KVMNC_MEM_LOG_DIRTY_PAGES;
	T_EQ(kvmnc_region_prepare(h, &pr, &p), 0, "plan a plain region");
	T_EQ(p.flags, KVMNC_MEM_LOG_DIRTY_PAGES, "plain: the VMM's flags unchanged");
	T_EQ(kvmnc_region_complete(h, pr.slot, t_raw_region(vm, &pr, p.flags)), 0,
	     "outcome reported");

	nr = t_region(1, 0x100000, SLOT_LEN, b, true);
	r = kvmnc_region_prepare(h, &nr, &p);
	if (info.region_mechanism == KVMNC_MECH_NONE) {
		T_EQ(r, -EOPNOTSUPP, "no mechanism: non-coherent plan refused");
		T_EQ(kvmnc_region_complete(h, nr.slot, 0), -ENOENT, "nothing was planned");
	} else {
		printf("# %s: plan flags %#x (added %#x) via %s\n", name, p.flags, p.add_flags,
		       kvmnc_mechanism_name(p.mechanism));
		T_EQ(r, 0, "plan a non-coherent region");
		T_EQ(p.mechanism, info.region_mechanism, "the handle's region mechanism");
		r = t_raw_region(vm, &nr, p.flags);
		T_EQ(r, 0, "the VMM's ioctl with the planned flags");
		T_EQ(kvmnc_region_complete(h, nr.slot, r), 0, "outcome reported");
		T_EQ(kvmnc_is_noncoherent(h), 1, "the library sees the VMM's slot");
		if (p.add_flags)
			T_EQ(t_raw_region(vm, &nr, 0), -EINVAL, "KVM keeps the flag on the slot");
		/* The VMM deletes it behind the library's back, then re-creates it plain. */
		nr.memory_size = 0;
		T_EQ(t_raw_region(vm, &nr, p.flags), 0, "raw delete");
		nr = t_region(1, 0x100000, SLOT_LEN, b, false);
		T_EQ(kvmnc_set_region(h, &nr), 0, "plain re-create after a raw delete");
		T_EQ(kvmnc_is_noncoherent(h), 0, "nothing non-coherent left");
	}
	T_EQ(kvmnc_close(h), 0, "close");
out:
	munmap(a, SLOT_LEN);
	munmap(b, SLOT_LEN);
	close(vm);
}

int main(void)
{
	KVMNC_OPTS(kvmnc_open_opts, o);
	int kvm = t_kvm_fd(), vm, fds = t_count_fds(), bad = 0;
	void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvmnc *h = NULL;
	long before, after;

	owned(kvm, KVMNC_MECH_NONE);
	owned(kvm, KVMNC_MECH_MEMSLOT_FLAG);
	owned(kvm, KVMNC_MECH_VIRTIO_DEVICE);
	owned(kvm, KVMNC_MECH_NATIVE);

	/* 1.0 grew its slot table before the ioctl: 16 such calls took 16 MiB. */
	vm = t_create_vm(kvm);
	T_EQ(kvmnc_open(vm, &o, &h), 0, "open");
	before = rss_kib();
	for (uint32_t as = 0; as < 16; as++) {
		struct kvmnc_region r = {
			.sz = sizeof(r),
			.slot = (as << 16) | 32767,
			.memory_size = 4096,
			.userspace_addr = (uintptr_t)mem,
		};

		bad += kvmnc_set_region(h, &r) != -EINVAL;
	}
	after = rss_kib();
	printf("# RSS %ld KiB -> %ld KiB over 16 rejected calls\n", before, after);
	T_EQ(bad, 0, "slot (as << 16) | 32767 refused in every address space");
	t_check(before > 0 && after - before < 1024, "rejected calls grow the process by < 1 MiB");
	T_EQ(kvmnc_close(h), 0, "close");
	close(vm);
	T_EQ(t_count_fds(), fds, "no fd left behind");
	close(kvm);
	return t_done();
}
