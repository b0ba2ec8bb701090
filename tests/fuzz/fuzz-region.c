// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz-region: bytes -> a handle on a fake kernel personality, then a
 * sequence of kvmnc_set_region() calls with arbitrary struct kvmnc_region
 * contents and sizes (trailing bytes included), device enable/disable, the
 * migration helpers on buffers this harness owns, info/features queries with
 * arbitrary struct sizes, and injected kernel failures.
 *
 * After every call the harness checks the library against a model of what
 * it asked for and against the fake kernel's own record:
 *  - return values are 0/1 or a negative errno;
 *  - the memslots the kernel holds are exactly those the library said it
 *    set, and carry KVM_MEM_NON_COHERENT_DMA exactly when they are
 *    non-coherent regions under the memslot-flag mechanism;
 *  - the device fds the kernel holds are the enabled devices (VIRTIO
 *    mechanism) plus the one region device while non-coherent regions
 *    exist, and every one of them has NONCOHERENT_SET;
 *  - the quirk is disabled in the kernel exactly when the handle says so;
 *  - no scratch mapping stays mapped, and after kvmnc_close() the fake
 *    holds only the VM fd the harness opened.
 *
 * Opcode 14 makes the same change through the VMM-owned path (prepare, the
 * VMM's own ioctl with the planned flags, complete).
 *
 * Input layout: byte 0 personality, byte 1 scope and forced mechanism, then
 * operations of one opcode byte and its operands until the input ends.
 */
#include <stdbool.h>

#include "compat-kvm.h"
#include "fuzz-common.h"

#define PAGE	    4096u
#define ARENA_PAGES 8u
#define REGION_BUF  128u
#define MODEL_SLOTS 256u
#define MODEL_DEVS  64u
#define MAX_OPS	    256
#define FLAG_NC_DMA (1ull << 3) /* KVM_MEM_NON_COHERENT_DMA */
#define QUIRK_PAT   (1ull << 9) /* KVM_X86_QUIRK_IGNORE_GUEST_PAT */

/* Guest memory stand-ins: the only memory the helpers are ever given. */
static unsigned char arena[ARENA_PAGES * PAGE] __attribute__((aligned(4096)));
static unsigned char other[ARENA_PAGES * PAGE] __attribute__((aligned(4096)));

struct model_slot {
	uint32_t slot;
	bool nc;
};

struct model {
	struct model_slot slots[MODEL_SLOTS];
	unsigned int nslots;
	uint32_t devs[MODEL_DEVS];
	unsigned int ndevs;
};

static struct model_slot *model_find(struct model *m, uint32_t slot)
{
	for (unsigned int i = 0; i < m->nslots; i++)
		if (m->slots[i].slot == slot)
			return &m->slots[i];
	return NULL;
}

static int model_dev(const struct model *m, uint32_t id)
{
	for (unsigned int i = 0; i < m->ndevs; i++)
		if (m->devs[i] == id)
			return (int)i;
	return -1;
}

static unsigned int model_nc(const struct model *m)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < m->nslots; i++)
		n += m->slots[i].nc;
	return n;
}

/* The library, the fake kernel and the model agree. */
static void check_state(struct kvmnc *h, int vm, const struct model *m)
{
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	unsigned int nc = model_nc(m), want_devs = 0;
	struct fake_vm_state st;
	int r;

	FZ_CHECK(kvmnc_get_info(h, &info) == 0);
	fake_vm_state(vm, &st);

	FZ_CHECK(info.noncoherent_regions == nc);
	FZ_CHECK(info.enabled_devices == m->ndevs);
	FZ_CHECK(st.nslots == (int)m->nslots);
	for (unsigned int i = 0; i < m->nslots; i++) {
		int64_t fl = fake_slot_flags(vm, m->slots[i].slot);
		bool want = m->slots[i].nc && info.region_mechanism == KVMNC_MECH_MEMSLOT_FLAG;

		FZ_CHECK(fl >= 0);
		FZ_CHECK(!!(fl & FLAG_NC_DMA) == want);
	}

	if (info.device_mechanism == KVMNC_MECH_VIRTIO_DEVICE)
		want_devs += m->ndevs;
	if (info.region_mechanism == KVMNC_MECH_VIRTIO_DEVICE && nc)
		want_devs++;
	FZ_CHECK(st.devices == (int)want_devs);
	FZ_CHECK(st.noncoherent_devices == st.devices);
	FZ_CHECK(info.quirk_disabled == !!(st.disabled_quirks & QUIRK_PAT));
	FZ_CHECK((st.disabled_quirks & ~QUIRK_PAT) == 0);

	/* What the VMM declared; the quirk in force by itself is not it. */
	r = kvmnc_is_noncoherent(h);
	FZ_CHECK(r == (nc || m->ndevs));

	FZ_CHECK(fake_open_maps() == 0);
	FZ_CHECK(fake_open_fds() == 1 + st.devices);
}

static int h_region_mech(struct kvmnc *h)
{
	struct kvmnc_handle_info info = {.sz = sizeof(info)};

	FZ_CHECK(kvmnc_get_info(h, &info) == 0);
	return info.region_mechanism;
}

/* A slot number: mostly a few valid ids in two address spaces, sometimes anything. */
static uint32_t gen_slot(struct fuzz_in *in)
{
	uint8_t b = fz_u8(in);

	if (b >= 0xf0)
		return fz_u32(in);
	return ((uint32_t)((b >> 5) & 1) << 16) | ((b & 0x1fu) % 24);
}

/* The VMM's own memslot ioctl (QEMU, crosvm), v2 where the kernel has it. */
static int vmm_ioctl(int vm, const struct kvmnc_region *r, uint32_t flags)
{
	struct kvm_userspace_memory_region2 m2 = {
		.slot = r->slot,
		.flags = flags,
		.guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
		.guest_memfd_offset = r->guest_memfd_offset,
		.guest_memfd = (uint32_t)r->guest_memfd,
	};
	struct kvm_userspace_memory_region m1 = {
		.slot = r->slot,
		.flags = flags,
		.guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
	};

	if (fake_vmm_ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2) > 0)
		return fake_vmm_ioctl(vm, KVM_SET_USER_MEMORY_REGION2, (unsigned long)&m2);
	return fake_vmm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m1);
}

/*
 * One memslot change: through kvmnc_set_region(), or (@vmm) the VMM-owned
 * path, kvmnc_region_prepare(), the VMM's ioctl with the planned flags and
 * kvmnc_region_complete() with KVM's answer. The model follows KVM either way.
 */
static void op_set_region(struct fuzz_in *in, struct kvmnc *h, int vm, struct model *m, bool vmm)
{
	union {
		struct kvmnc_region r;
		unsigned char b[REGION_BUF];
	} u;
	struct kvmnc_region eff;
	uint8_t mode = fz_u8(in);
	size_t sz, n;
	bool trailing_nz = false;
	struct model_slot *ms;
	int r;

	memset(&u, 0, sizeof(u));
	if (mode & 1) {
		/* Raw: the struct's bytes straight from the input. */
		fz_bytes(in, &u.r, sizeof(u.r));
	} else {
		/* Structured: values that pass validation often enough to go deep. */
		uint8_t f = fz_u8(in);
		uint8_t gpa = fz_u8(in), size = fz_u8(in), hva = fz_u8(in);

		u.r.slot = gen_slot(in);
		u.r.flags = f & 0x3;
		if (f & 0x40)
			u.r.flags |= KVMNC_MEM_GUEST_MEMFD;
		if (f & 0x80)
			u.r.flags |= 1u << (fz_u8(in) & 31);
		u.r.kvmnc_flags = f >> 2 & 1;
		if ((f & 0x38) == 0x38)
			u.r.kvmnc_flags |= 1u << (fz_u8(in) & 31);
		u.r.guest_phys_addr = (uint64_t)gpa * PAGE;
		u.r.memory_size = (uint64_t)(size & 7) * PAGE;
		u.r.userspace_addr = (uintptr_t)arena + (uint64_t)(hva % ARENA_PAGES) * PAGE;
		if (size & 0x80)
			u.r.memory_size |= size & 0x70; /* misaligned */
		if ((size & 0x78) == 0x78)
			u.r.guest_phys_addr = UINT64_MAX - PAGE + 1; /* wraps */
		if (u.r.flags & KVMNC_MEM_GUEST_MEMFD) {
			u.r.guest_memfd = (int32_t)fz_u8(in) - 8;
			u.r.guest_memfd_offset = (uint64_t)fz_u8(in) * PAGE;
		}
	}

	/* The struct size the caller claims, within what the harness owns. */
	switch (mode >> 1 & 3) {
	case 0:
		sz = sizeof(u.r);
		break;
	case 1:
		sz = fz_u8(in) % (sizeof(u.r) + 1);
		break;
	default:
		sz = sizeof(u.r) + fz_u8(in) % (REGION_BUF - sizeof(u.r) + 1);
		if (mode & 0x10)
			fz_bytes(in, u.b + sizeof(u.r), sz - sizeof(u.r));
		break;
	}
	u.r.sz = sz;
	for (size_t i = sizeof(u.r); i < sz; i++)
		trailing_nz |= u.b[i] != 0;

	/* What the library sees: the first sz bytes, zeros beyond. */
	memset(&eff, 0, sizeof(eff));
	n = sz < sizeof(eff) ? sz : sizeof(eff);
	memcpy(&eff, &u.r, n);

	if (vmm) {
		struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);

		r = kvmnc_region_prepare(h, &u.r, &plan);
		FZ_CHECK_RET0(r);
		if (r == 0) {
			int k = vmm_ioctl(vm, &eff, plan.flags);

			FZ_CHECK((plan.flags & ~plan.add_flags) ==
				 (eff.flags & ~KVMNC_MEM_NON_COHERENT_DMA));
			/* A failed ioctl too: the report itself succeeds. */
			FZ_CHECK(kvmnc_region_complete(h, eff.slot, k > 0 ? 0 : k) == 0);
			FZ_CHECK(kvmnc_region_complete(h, eff.slot, 0) == -ENOENT);
			r = k;
		}
	} else {
		r = kvmnc_set_region(h, &u.r);
		FZ_CHECK_RET0(r);
	}

	/* Too short to hold the addresses (a size 0 would read as a delete). */
	if (sz < offsetofend(struct kvmnc_region, userspace_addr))
		FZ_CHECK(r == -EINVAL);
	else if (trailing_nz)
		FZ_CHECK(r == -E2BIG);
	if (r < 0)
		return;

	ms = model_find(m, eff.slot);
	/* Bounded by what the VM supports (x86: two address spaces, 32764 ids). */
	FZ_CHECK(eff.slot >> 16 < 2 && (eff.slot & 0xffff) < 32767);
	FZ_CHECK((eff.flags & ~(KVMNC_MEM_LOG_DIRTY_PAGES | KVMNC_MEM_READONLY |
				KVMNC_MEM_GUEST_MEMFD | (vmm ? KVMNC_MEM_NON_COHERENT_DMA : 0))) ==
		 0);
	FZ_CHECK((eff.kvmnc_flags & ~KVMNC_REGION_NONCOHERENT) == 0);
	/* crosvm asks with the kernel's bit; the VMM-owned path takes it as kvmnc_flags. */
	if (vmm && (eff.flags & KVMNC_MEM_NON_COHERENT_DMA))
		eff.kvmnc_flags |= KVMNC_REGION_NONCOHERENT;
	if (eff.memory_size == 0) {
		/* The fake refuses to delete what is not there. */
		FZ_CHECK(ms != NULL);
		*ms = m->slots[--m->nslots];
		return;
	}
	FZ_CHECK(((eff.guest_phys_addr | eff.memory_size | eff.userspace_addr) & (PAGE - 1)) == 0);
	FZ_CHECK(eff.guest_phys_addr + eff.memory_size > eff.guest_phys_addr);
	if (ms) {
		/*
		 * KVM keeps the flag on an existing slot; under a VM-wide
		 * mechanism the kernel knows nothing to refuse, and the library
		 * follows what succeeded.
		 */
		if (h_region_mech(h) == KVMNC_MECH_MEMSLOT_FLAG)
			FZ_CHECK(ms->nc == !!(eff.kvmnc_flags & KVMNC_REGION_NONCOHERENT));
		ms->nc = eff.kvmnc_flags & KVMNC_REGION_NONCOHERENT;
		return;
	}
	FZ_CHECK(m->nslots < MODEL_SLOTS);
	m->slots[m->nslots++] = (struct model_slot){
		.slot = eff.slot,
		.nc = eff.kvmnc_flags & KVMNC_REGION_NONCOHERENT,
	};
}

static void op_device(struct fuzz_in *in, struct kvmnc *h, struct model *m, bool enable)
{
	uint8_t b = fz_u8(in);
	uint32_t id = b < 0xf8 ? b % 12u : fz_u32(in);
	int had = model_dev(m, id), r;

	if (enable) {
		r = kvmnc_device_enable(h, id);
		FZ_CHECK_RET0(r);
		if (had >= 0)
			FZ_CHECK(r == 0);
		if (r == 0 && had < 0) {
			FZ_CHECK(m->ndevs < MODEL_DEVS);
			m->devs[m->ndevs++] = id;
		}
	} else {
		r = kvmnc_device_disable(h, id);
		FZ_CHECK_RET0(r);
		FZ_CHECK(had >= 0 ? r == 0 : r == -ENOENT);
		if (had >= 0)
			m->devs[had] = m->devs[--m->ndevs];
	}
}

/* Copies between the arena and the other buffer, or within one (overlapping). */
static void op_copy(struct fuzz_in *in, struct kvmnc *h)
{
	uint8_t mode = fz_u8(in);
	size_t len = fz_u16(in) % (2 * PAGE + 1);
	size_t soff = fz_u16(in) % (sizeof(arena) - len + 1);
	size_t doff = fz_u16(in) % (sizeof(other) - len + 1);
	bool same = mode & 4;
	unsigned char *src = arena + soff, *dst = (same ? arena : other) + doff;
	bool overlap = same && len && soff < doff + len && doff < soff + len;
	int r;

	for (size_t i = 0; i < len; i++)
		src[i] = (unsigned char)(i * 131 + mode);
	/* Swap the roles so that the arena is the guest side either way. */
	if (mode & 1)
		r = kvmnc_copy_from_guest(h, dst, src, len);
	else
		r = kvmnc_copy_to_guest(h, dst, src, len);
	FZ_CHECK_RET0(r);
	if (overlap)
		FZ_CHECK(r == -EINVAL);
	else
		FZ_CHECK(r == 0 && memcmp(dst, src, len) == 0);

	if (mode & 2) {
		FZ_CHECK(kvmnc_flush(h, src, len) == 0);
		FZ_CHECK(kvmnc_flush(h, NULL, 0) == 0);
		FZ_CHECK(kvmnc_flush(h, NULL, len + 1) == -EINVAL);
		FZ_CHECK(kvmnc_copy_to_guest(h, NULL, src, len + 1) == -EINVAL);
		FZ_CHECK(kvmnc_copy_from_guest(h, dst, NULL, len + 1) == -EINVAL);
	}
}

/* get_info / get_features with a caller struct of arbitrary size. */
static void op_query(struct fuzz_in *in, struct kvmnc *h)
{
	union {
		struct kvmnc_features f;
		struct kvmnc_handle_info i;
		unsigned char b[sizeof(struct kvmnc_features) + 64];
	} u;
	uint8_t mode = fz_u8(in);
	size_t max = mode & 1 ? sizeof(struct kvmnc_handle_info) + 64 : sizeof(u.b);
	size_t sz = fz_u16(in) % (max + 1);
	int r;

	memset(&u, 0xa5, sizeof(u));
	/* A size below sizeof(size_t) is refused; the field is always there. */
	u.f.sz = sz;
	if (mode & 1)
		r = kvmnc_get_info(h, &u.i);
	else
		r = kvmnc_get_features(h, &u.f);
	FZ_CHECK_RET0(r);
	if (sz < sizeof(size_t)) {
		FZ_CHECK(r == -EINVAL);
		return;
	}
	FZ_CHECK(r == 0);
	/* Nothing written past the caller's struct. */
	for (size_t i = sz; i < sizeof(u.b); i++)
		FZ_CHECK(u.b[i] == 0xa5);
	if (mode & 1) {
		FZ_CHECK(u.i.sz == sz);
		for (size_t i = sizeof(u.i); i < sz; i++)
			FZ_CHECK(u.b[i] == 0);
		if (sz >= offsetofend(struct kvmnc_handle_info, scope)) {
			FZ_CHECK(u.i.region_mechanism >= 0 && u.i.region_mechanism <= 4);
			FZ_CHECK(u.i.device_mechanism >= 0 && u.i.device_mechanism <= 4);
			FZ_CHECK(u.i.device_mechanism != KVMNC_MECH_MEMSLOT_FLAG);
			FZ_CHECK(u.i.scope >= 0 && u.i.scope <= 2);
		}
	} else {
		fz_check_features(&u.f, sz);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool log_set;
	struct fuzz_in in = {data, size};
	struct kvmnc_open_opts o = {.sz = sizeof(o)};
	struct model *m;
	struct kvmnc *h = NULL;
	uint8_t b;
	int vm, r;

	if (!log_set) {
		kvmnc_set_log(fz_log, KVMNC_LOG_DEBUG, NULL);
		log_set = true;
	}
	fake_reset(&fake_personalities[fz_u8(&in) % fake_npersonalities]);
	vm = fake_create_vm();
	if (vm < 0) {
		FZ_CHECK(fake_open_fds() == 0);
		return 0;
	}

	b = fz_u8(&in);
	o.scope = b % 3;
	o.mechanism = b & 0x80 ? (b >> 2) % 5 : KVMNC_MECH_NONE;
	r = kvmnc_open(vm, &o, &h);
	FZ_CHECK_RET0(r);
	if (r < 0) {
		FZ_CHECK(h == NULL);
		FZ_CHECK(fake_open_fds() == 1 && fake_open_maps() == 0);
		fake_close(vm);
		return 0;
	}

	m = calloc(1, sizeof(*m));
	FZ_CHECK(m != NULL);
	check_state(h, vm, m);
	for (int ops = 0; in.left && ops < MAX_OPS; ops++) {
		uint8_t op = fz_u8(&in);

		switch (op % 16) {
		case 0:
		case 1:
		case 2:
		case 3:
		case 4:
		case 5:
		case 6:
			op_set_region(&in, h, vm, m, false);
			break;
		case 7:
		case 8:
			op_device(&in, h, m, true);
			break;
		case 9:
			op_device(&in, h, m, false);
			break;
		case 10:
		case 11:
			op_copy(&in, h);
			break;
		case 12:
			op_query(&in, h);
			break;
		case 13:
			/* The next kernel call (within a few) fails. */
			b = fz_u8(&in);
			fake_fail_nth(1 + b % 6, fz_errno(&in));
			break;
		case 14:
			op_set_region(&in, h, vm, m, true);
			break;
		default:
			fake_fail_nth(0, 0);
			break;
		}
		check_state(h, vm, m);
	}
	free(m);

	/* A failure still pending hits kvmnc_close(), which must clean up anyway. */
	FZ_CHECK(kvmnc_close(h) == 0);
	fake_fail_nth(0, 0);
	/* Only the VM fd the harness created is left; nothing stays mapped. */
	FZ_CHECK(fake_open_fds() == 1);
	FZ_CHECK(fake_open_maps() == 0);
	/* A closed handle is refused, not used. */
	FZ_CHECK(kvmnc_close(h) == -EBADF);
	FZ_CHECK(kvmnc_is_noncoherent(h) == -EBADF);
	FZ_CHECK(kvmnc_device_enable(h, 1) == -EBADF);
	fake_close(vm);
	FZ_CHECK(fake_open_fds() == 0);
	return 0;
}
