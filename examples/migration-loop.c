// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * migration-loop: live migration of a VM with non-coherent memory, source
 * and destinations in one process, with libkvmnc deciding what needs the
 * coherent helpers.
 *
 *   cc migration-loop.c $(pkg-config --cflags --libs libkvmnc) -pthread
 *
 * The guest has three memslots: RAM at 0 (512 KiB, the code), a blob at
 * 512 KiB (256 KiB, non-coherent where the host can make it so: a device
 * writes it without snooping) and RAM at 768 KiB (256 KiB).
 *
 *   pre-copy   a snapshot of the non-coherent state and the policy's
 *              verdict; a full pass; passes over KVM_GET_DIRTY_LOG (and the
 *              VMM's own record of what its device models wrote) while a
 *              real-mode guest writes pages; then stop and copy, which also
 *              sends the non-coherent ranges again: the device writes them,
 *              and no dirty log sees that. Every page goes with the helper
 *              the snapshot calls for: kvmnc_copy_from_guest() out of a
 *              non-coherent range, kvmnc_copy_to_guest() into one, memcpy()
 *              elsewhere. The destination is compared with the source.
 *   post-copy  a third VM starts with no memory at all; its vCPU's accesses
 *              fault into a userfaultfd handler, which places each page
 *              with UFFDIO_COPY_MODE_DONTWAKE, flushes it (kvmnc_flush())
 *              and only then wakes the vCPU with UFFDIO_WAKE.
 *
 * On a host with no mechanism the blob is plain memory and every page goes
 * with memcpy(); the loop is the same. Exit status: 0 migrated and
 * verified, 1 the policy blocks migration (the reason on stderr), 2 error.
 * Post-copy is skipped, with the reason, where userfaultfd is not permitted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <kvmnc.h>

#define PAGE	 4096u
#define NSLOTS	 3
#define BLOB	 1 /* the non-coherent memslot */
#define ROUNDS	 3
#define CODE_A	 0x1000 /* program A: writes what its table says */
#define TABLE_A	 0x500
#define CODE_B	 0x2000 /* program B: reads one byte of every page */
#define TABLE_B	 0x3000
#define MAX_PGS	 128 /* pages per memslot */
#define BM_WORDS (MAX_PGS / 64)

struct slot {
	uint32_t id;
	uint64_t gpa, size;
	unsigned char *mem;
	bool nc; /* registered as non-coherent (the host could) */
};

struct vm {
	const char *name;
	int fd;
	int vcpu; /* -1 until the first run */
	struct kvm_run *run;
	size_t run_size;
	struct kvmnc *h;
	struct slot slots[NSLOTS];
	/* Pages the VMM itself (its device models, its loader) wrote: no dirty log sees them. */
	uint64_t vmm_dirty[NSLOTS][BM_WORDS];
};

static const uint64_t slot_gpa[NSLOTS] = {0, 512 << 10, 768 << 10};
static const uint64_t slot_size[NSLOTS] = {512 << 10, 256 << 10, 256 << 10};

/*
 * Program A: for each (segment, offset, value) of the table at TABLE_A,
 * store the value at segment:offset; hlt. Program B: the same walk over the
 * table at TABLE_B, loading instead. 16-bit real mode.
 */
static const unsigned char prog_a[] = {
	0xbe, TABLE_A & 0xff, TABLE_A >> 8, /* mov si, TABLE_A */
	0xad,				    /* lodsw: the count */
	0x89, 0xc1,			    /* mov cx, ax */
	0xad,				    /* 1: lodsw: segment */
	0x8e, 0xc0,			    /* mov es, ax */
	0xad,				    /* lodsw: offset */
	0x89, 0xc7,			    /* mov di, ax */
	0xac,				    /* lodsb: the value */
	0xaa,				    /* stosb */
	0xe2, 0xf6,			    /* loop 1b */
	0xf4,				    /* hlt */
};
static const unsigned char prog_b[] = {
	0xbe, TABLE_B & 0xff, TABLE_B >> 8, /* mov si, TABLE_B */
	0xad,				    /* lodsw */
	0x89, 0xc1,			    /* mov cx, ax */
	0xad,				    /* 1: lodsw */
	0x8e, 0xc0,			    /* mov es, ax */
	0xad,				    /* lodsw */
	0x89, 0xc7,			    /* mov di, ax */
	0xac,				    /* lodsb (unused) */
	0x26, 0x8a,	      0x05,	    /* mov al, es:[di] */
	0xe2, 0xf4,			    /* loop 1b */
	0xf4,				    /* hlt */
};

/*
 * The KVM calls that are not the library's. A test builds this file with
 * MIGRATION_LOOP_FAKE defined and supplies them against the library's fake
 * kernel (tests/unit/test-migration-loop.c).
 */
static int kvm_node(void);
static int vm_create(int kvm);
/* Runs the vCPU from @rip until it halts: 0, or -errno. */
static int vcpu_run(int kvm, struct vm *vm, uint64_t rip);
/* KVM_GET_DIRTY_LOG of @s into @bm (pages written by the guest since the last call). */
static int dirty_log(struct vm *vm, const struct slot *s, uint64_t *bm);

#ifndef MIGRATION_LOOP_FAKE
static int kvm_node(void)
{
	return open("/dev/kvm", O_RDWR | O_CLOEXEC);
}

static int vm_create(int kvm)
{
	return ioctl(kvm, KVM_CREATE_VM, 0);
}

static int vcpu_run(int kvm, struct vm *vm, uint64_t rip)
{
	struct kvm_regs regs = {.rip = rip, .rflags = 2};
	struct kvm_sregs sregs;

	if (vm->vcpu < 0) {
		int size;

		ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000UL);
		vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
		size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
		if (vm->vcpu < 0 || size <= 0)
			return -errno;
		vm->run_size = (size_t)size;
		vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
		if (vm->run == MAP_FAILED) {
			vm->run = NULL;
			return -errno;
		}
	}
	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vm->vcpu, KVM_SET_REGS, &regs) < 0)
		return -errno;
	if (ioctl(vm->vcpu, KVM_RUN, 0) < 0)
		return -errno;
	return vm->run->exit_reason == KVM_EXIT_HLT ? 0 : -EIO;
}

static int dirty_log(struct vm *vm, const struct slot *s, uint64_t *bm)
{
	struct kvm_dirty_log log = {.slot = s->id, .dirty_bitmap = bm};

	return ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) < 0 ? -errno : 0;
}
#endif

static int complain(const char *what, int err)
{
	fprintf(stderr, "migration-loop: %s: %s\n", what, kvmnc_strerror(err));
	return -1;
}

static void *map_mem(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* A VM with the three memslots; the blob non-coherent where the host can. */
static int vm_setup(int kvm, struct vm *vm, const char *name, uint32_t mem_flags, bool map)
{
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->name = name;
	vm->vcpu = -1;
	vm->fd = vm_create(kvm);
	if (vm->fd < 0)
		return complain("KVM_CREATE_VM", -errno);
	/* Right after KVM_CREATE_VM, before memslots and vCPUs. */
	r = kvmnc_open(vm->fd, NULL, &vm->h);
	if (r < 0)
		return complain("kvmnc_open", r);
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &vm->slots[i];
		struct kvmnc_region reg = {
			.sz = sizeof(reg),
			.slot = (uint32_t)i,
			.flags = mem_flags,
			.guest_phys_addr = slot_gpa[i],
			.memory_size = slot_size[i],
			.kvmnc_flags = i == BLOB ? KVMNC_REGION_NONCOHERENT : 0,
		};

		s->id = (uint32_t)i;
		s->gpa = slot_gpa[i];
		s->size = slot_size[i];
		s->mem = map ? map_mem(s->size) : NULL;
		if (map && !s->mem)
			return complain("mmap", -errno);
		if (!map)
			continue;
		reg.userspace_addr = (uintptr_t)s->mem;
		r = kvmnc_set_region(vm->h, &reg);
		if (r == -EOPNOTSUPP) {
			/* No mechanism here: the device model would run coherent instead. */
			reg.kvmnc_flags = 0;
			r = kvmnc_set_region(vm->h, &reg);
		} else if (r == 0 && i == BLOB) {
			s->nc = true;
		}
		if (r < 0)
			return complain("kvmnc_set_region", r);
	}
	return 0;
}

static void vm_teardown(struct vm *vm)
{
	kvmnc_close(vm->h);
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu >= 0)
		close(vm->vcpu);
	for (int i = 0; i < NSLOTS; i++)
		if (vm->slots[i].mem)
			munmap(vm->slots[i].mem, vm->slots[i].size);
	if (vm->fd >= 0)
		close(vm->fd);
}

/* The slot holding @gpa, and the host address. */
static unsigned char *gpa_to_hva(struct vm *vm, uint64_t gpa, int *slot)
{
	for (int i = 0; i < NSLOTS; i++) {
		const struct slot *s = &vm->slots[i];

		if (gpa >= s->gpa && gpa < s->gpa + s->size) {
			if (slot)
				*slot = i;
			return s->mem + (gpa - s->gpa);
		}
	}
	return NULL;
}

static void mark_dirty(struct vm *vm, int i, uint64_t off, size_t len)
{
	for (uint64_t pg = off / PAGE; pg <= (off + len - 1) / PAGE; pg++)
		vm->vmm_dirty[i][pg / 64] |= 1ULL << (pg % 64);
}

/* The VMM writes guest memory (a loader, a coherent device model): it records the page. */
static void vmm_write(struct vm *vm, uint64_t gpa, const void *data, size_t len)
{
	int i = 0;
	unsigned char *p = gpa_to_hva(vm, gpa, &i);

	memcpy(p, data, len);
	mark_dirty(vm, i, gpa - vm->slots[i].gpa, len);
}

/*
 * The device model writes the blob. A non-snooping device (a host GPU)
 * does it with DMA nobody sees, so nothing records it; where the blob is
 * plain memory the device model is the VMM's own, coherent one, and it
 * records its writes as any device model must.
 */
static void device_dma(struct vm *vm, unsigned seed)
{
	struct slot *s = &vm->slots[BLOB];

	for (uint64_t off = 0; off < s->size; off += 3 * PAGE + 64) {
		s->mem[off] = (unsigned char)(seed * 7 + off / PAGE);
		if (!s->nc)
			mark_dirty(vm, BLOB, off, 1);
	}
}

/* A table for program A or B at @table: entries (segment, offset, value). */
static void write_table(struct vm *vm, uint64_t table, const uint64_t *gpas, int n, unsigned seed)
{
	unsigned char buf[2 + 5 * 3 * MAX_PGS];
	uint16_t count = (uint16_t)n;

	memcpy(buf, &count, 2);
	for (int k = 0; k < n; k++) {
		uint16_t seg = (uint16_t)(gpas[k] >> 4 & 0xf000),
			 off = (uint16_t)(gpas[k] - seg * 16u);

		memcpy(buf + 2 + 5 * k, &seg, 2);
		memcpy(buf + 4 + 5 * k, &off, 2);
		buf[6 + 5 * k] = (unsigned char)(seed + k);
	}
	vmm_write(vm, table, buf, 2 + 5 * (size_t)n);
}

/* ---- the migration ------------------------------------------------------------ */

struct pass_stats {
	unsigned coherent, plain;
};

/* Which memslots of @vm the snapshot calls non-coherent. */
static void nc_slots(const struct kvmnc_snapshot *snap, bool nc[NSLOTS])
{
	for (int i = 0; i < NSLOTS; i++)
		nc[i] = false;
	for (size_t k = 0; k < snap->count; k++) {
		const struct kvmnc_range *r =
			(const void *)((const char *)snap->ranges + k * snap->range_sz);

		for (int i = 0; i < NSLOTS; i++)
			if ((r->why & KVMNC_RANGE_ANY) || r->slot == (uint32_t)i)
				nc[i] = true;
	}
}

struct migration {
	struct vm *src, *dst;
	struct kvmnc_snapshot *src_snap, *dst_snap;
	bool src_nc[NSLOTS], dst_nc[NSLOTS];
	struct pass_stats st;
};

/* One page of slot @i, source to destination, over a "wire" buffer. */
static int send_page(struct migration *m, int i, uint64_t pg)
{
	static unsigned char wire[PAGE] __attribute__((aligned(64)));
	unsigned char *from = m->src->slots[i].mem + pg * PAGE;
	unsigned char *to = m->dst->slots[i].mem + pg * PAGE;
	int r = 0;

	if (m->src_nc[i])
		r = kvmnc_copy_from_guest(m->src->h, wire, from, PAGE);
	else
		memcpy(wire, from, PAGE);
	if (r == 0 && m->dst_nc[i])
		r = kvmnc_copy_to_guest(m->dst->h, to, wire, PAGE);
	else if (r == 0)
		memcpy(to, wire, PAGE);
	if (m->src_nc[i] || m->dst_nc[i])
		m->st.coherent++;
	else
		m->st.plain++;
	return r;
}

/* Every page of the bitmap (or of the slot, @bm NULL). */
static int send_pages(struct migration *m, int i, const uint64_t *bm)
{
	uint64_t pages = m->src->slots[i].size / PAGE;

	for (uint64_t pg = 0; pg < pages; pg++) {
		if (bm && !(bm[pg / 64] & 1ULL << (pg % 64)))
			continue;
		int r = send_page(m, i, pg);

		if (r < 0)
			return complain("copy", r);
	}
	return 0;
}

/* KVM's dirty log and the VMM's own record, both reset. */
static int dirty_pass(struct migration *m, unsigned *pages)
{
	*pages = 0;
	for (int i = 0; i < NSLOTS; i++) {
		uint64_t bm[BM_WORDS] = {0};
		int r = dirty_log(m->src, &m->src->slots[i], bm);

		if (r < 0)
			return complain("KVM_GET_DIRTY_LOG", r);
		for (int w = 0; w < BM_WORDS; w++) {
			bm[w] |= m->src->vmm_dirty[i][w];
			m->src->vmm_dirty[i][w] = 0;
			*pages += (unsigned)__builtin_popcountll(bm[w]);
		}
		if (send_pages(m, i, bm) < 0)
			return -1;
	}
	return 0;
}

static int snapshots(struct migration *m, int mode, struct kvmnc_migration_advice *adv)
{
	int r = kvmnc_snapshot_take(m->src->h, sizeof(struct kvmnc_range), &m->src_snap);

	if (r == 0)
		r = kvmnc_snapshot_take(m->dst->h, sizeof(struct kvmnc_range), &m->dst_snap);
	if (r < 0)
		return complain("kvmnc_snapshot_take", r);
	nc_slots(m->src_snap, m->src_nc);
	nc_slots(m->dst_snap, m->dst_nc);
	r = kvmnc_migration_advise(m->src_snap, mode, adv);
	if (r < 0)
		return complain("kvmnc_migration_advise", r);
	printf("%s: %zu non-coherent range(s) (%s / %s); policy: %s: %s\n",
	       mode == KVMNC_MIGRATION_POSTCOPY ? "post-copy" : "pre-copy", m->src_snap->count,
	       m->src_snap->invalidate_insn, m->src_snap->writeback_insn,
	       adv->action == KVMNC_MIGRATE_BLOCK      ? "block"
	       : adv->action == KVMNC_MIGRATE_COHERENT ? "coherent helpers"
						       : "plain",
	       adv->reason);
	return 0;
}

static bool same_memory(struct vm *a, struct vm *b)
{
	for (int i = 0; i < NSLOTS; i++)
		if (memcmp(a->slots[i].mem, b->slots[i].mem, a->slots[i].size))
			return false;
	return true;
}

/* Pages program A writes in round @round: a few in each memslot, the blob too. */
static int guest_round(int kvm, struct vm *vm, int round)
{
	uint64_t gpas[3 * 5];
	int n = 0;

	/* Not the first four pages: the programs and their tables. */
	for (int i = 0; i < NSLOTS; i++)
		for (int k = 0; k < 5; k++) {
			uint64_t pg =
				4 + (uint64_t)(round * 11 + k * 7) % (slot_size[i] / PAGE - 4);

			gpas[n++] = slot_gpa[i] + pg * PAGE + (uint64_t)(round * 8 + k);
		}
	write_table(vm, TABLE_A, gpas, n, (unsigned)round * 16);
	return vcpu_run(kvm, vm, CODE_A);
}

static int precopy(int kvm, struct vm *src, struct vm *dst)
{
	struct kvmnc_migration_advice adv = {.sz = sizeof(adv)};
	struct migration m = {.src = src, .dst = dst};
	unsigned dirty = 0, total = 0;
	int r = -1;

	if (snapshots(&m, KVMNC_MIGRATION_PRECOPY, &adv) < 0)
		goto out;
	if (adv.action == KVMNC_MIGRATE_BLOCK) {
		fprintf(stderr, "migration-loop: blocked: %s\n", adv.reason);
		r = 1;
		goto out;
	}
	/* The first pass sends everything; the logs start from here. */
	for (int i = 0; i < NSLOTS; i++) {
		uint64_t bm[BM_WORDS];

		if (dirty_log(src, &src->slots[i], bm) < 0 || send_pages(&m, i, NULL) < 0)
			goto out;
		memset(src->vmm_dirty[i], 0, sizeof(src->vmm_dirty[i]));
	}
	for (int round = 1; round <= ROUNDS; round++) {
		r = guest_round(kvm, src, round);
		if (r < 0) {
			complain("guest", r);
			r = -1;
			goto out;
		}
		device_dma(src, (unsigned)round);
		r = -1;
		if (dirty_pass(&m, &dirty) < 0)
			goto out;
		total += dirty;
		printf("pre-copy: round %d: %u dirty pages\n", round, dirty);
	}
	/* Stop and copy: the vCPU is stopped (it halted), the device model stops here. */
	if (kvmnc_snapshot_stale(src->h, m.src_snap) == 1)
		printf("pre-copy: the non-coherent state changed during the passes\n");
	if (dirty_pass(&m, &dirty) < 0)
		goto out;
	if (adv.flags & KVMNC_ADVICE_RESEND)
		for (int i = 0; i < NSLOTS; i++)
			if (m.src_nc[i] && send_pages(&m, i, NULL) < 0)
				goto out;
	if (!same_memory(src, dst)) {
		fprintf(stderr, "migration-loop: the destination differs from the source\n");
		goto out;
	}
	printf("pre-copy: %u dirty pages over %d rounds; %u pages with the coherent helpers, %u "
	       "with memcpy; destination verified\n",
	       total + dirty, ROUNDS, m.st.coherent, m.st.plain);
	r = 0;
out:
	kvmnc_snapshot_free(m.src_snap);
	kvmnc_snapshot_free(m.dst_snap);
	return r;
}

/* ---- post-copy ---------------------------------------------------------------- */

struct postcopy {
	struct migration m;
	int uffd, stop[2];
	unsigned faults, placed;
	uint64_t present[NSLOTS][BM_WORDS];
	int err;
};

/*
 * Places the page holding @addr in the destination: filled without waking
 * the vCPU, flushed where it is non-coherent, then woken. A flush after a
 * waking UFFDIO_COPY would race the vCPU's own writes through its uncached
 * or write-combining mapping.
 */
static int place(struct postcopy *pc, uint64_t addr)
{
	static unsigned char page[PAGE] __attribute__((aligned(PAGE)));
	struct vm *dst = pc->m.dst, *src = pc->m.src;
	int i, r = 0;

	addr &= ~(uint64_t)(PAGE - 1);
	for (i = 0; i < NSLOTS; i++)
		if (addr >= (uintptr_t)dst->slots[i].mem &&
		    addr < (uintptr_t)dst->slots[i].mem + dst->slots[i].size)
			break;
	if (i == NSLOTS)
		return -EFAULT;
	const unsigned char *from = src->slots[i].mem + (addr - (uintptr_t)dst->slots[i].mem);

	if (pc->m.src_nc[i])
		r = kvmnc_copy_from_guest(src->h, page, from, PAGE);
	else
		memcpy(page, from, PAGE);
	if (r < 0)
		return r;

	struct uffdio_copy copy = {
		.dst = addr,
		.src = (uintptr_t)page,
		.len = PAGE,
		.mode = UFFDIO_COPY_MODE_DONTWAKE,
	};
	struct uffdio_range wake = {.start = addr, .len = PAGE};

	/* 1. Fill and map the page; whoever waits for it keeps waiting. */
	if (ioctl(pc->uffd, UFFDIO_COPY, &copy) < 0 && errno != EEXIST)
		return -errno;
	/* 2. Its lines reach memory while nobody can use it yet. */
	if (pc->m.dst_nc[i]) {
		r = kvmnc_flush(dst->h, (void *)(uintptr_t)addr, PAGE);
		if (r < 0)
			return r;
	}
	/* 3. Now the vCPU may run on. */
	if (ioctl(pc->uffd, UFFDIO_WAKE, &wake) < 0)
		return -errno;
	pc->faults++;
	uint64_t pg = (addr - (uintptr_t)dst->slots[i].mem) / PAGE;

	if (!(pc->present[i][pg / 64] & 1ULL << (pg % 64))) {
		pc->present[i][pg / 64] |= 1ULL << (pg % 64);
		pc->placed++;
	}
	return 0;
}

static void *fault_handler(void *arg)
{
	struct postcopy *pc = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = pc->uffd, .events = POLLIN},
				      {.fd = pc->stop[0], .events = POLLIN}};
		struct uffd_msg msg;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pc->err = -errno;
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (read(pc->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue; /* EAGAIN: another event took it */
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		pc->err = place(pc, msg.arg.pagefault.address);
		if (pc->err < 0)
			return NULL;
	}
}

static unsigned total_pages(const struct vm *vm)
{
	unsigned n = 0;

	for (int i = 0; i < NSLOTS; i++)
		n += (unsigned)(vm->slots[i].size / PAGE);
	return n;
}

/* A userfaultfd for the destination's memory, or -errno (and why). */
static int uffd_open(void)
{
	struct uffdio_api api = {.api = UFFD_API};
	/* Kernel faults too (KVM reads guest memory for the vCPU): not UFFD_USER_MODE_ONLY. */
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int postcopy(int kvm, struct vm *src)
{
	struct kvmnc_migration_advice adv = {.sz = sizeof(adv)};
	struct postcopy pc = {.uffd = -1, .stop = {-1, -1}};
	struct vm dst;
	pthread_t thr;
	bool started = false;
	int r = -1;

	/* The destination's memory is registered before KVM can touch it. */
	if (vm_setup(kvm, &dst, "postcopy", 0, false) < 0)
		goto out_vm;
	pc.uffd = uffd_open();
	if (pc.uffd < 0) {
		printf("post-copy: skipped: userfaultfd: %s%s\n", strerror(-pc.uffd),
		       pc.uffd == -EPERM ? " (with vm.unprivileged_userfaultfd=0, faults taken by "
					   "KVM need CAP_SYS_PTRACE)"
					 : "");
		r = 0;
		goto out_vm;
	}
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &dst.slots[i];
		struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};
		struct kvmnc_region kr = {
			.sz = sizeof(kr),
			.slot = s->id,
			.guest_phys_addr = s->gpa,
			.memory_size = s->size,
			.kvmnc_flags = src->slots[i].nc ? KVMNC_REGION_NONCOHERENT : 0,
		};

		s->mem = map_mem(s->size);
		if (!s->mem) {
			complain("mmap", -errno);
			goto out;
		}
		reg.range.start = (uintptr_t)s->mem;
		reg.range.len = s->size;
		if (ioctl(pc.uffd, UFFDIO_REGISTER, &reg) < 0) {
			complain("UFFDIO_REGISTER", -errno);
			goto out;
		}
		kr.userspace_addr = (uintptr_t)s->mem;
		r = kvmnc_set_region(dst.h, &kr);
		if (r < 0) {
			complain("kvmnc_set_region", r);
			r = -1;
			goto out;
		}
		s->nc = src->slots[i].nc;
		r = -1;
	}
	pc.m.src = src;
	pc.m.dst = &dst;
	if (snapshots(&pc.m, KVMNC_MIGRATION_POSTCOPY, &adv) < 0)
		goto out;
	if (adv.action == KVMNC_MIGRATE_BLOCK) {
		printf("post-copy: skipped: the policy blocks it: %s\n", adv.reason);
		r = 0;
		goto out;
	}
	if (pipe2(pc.stop, O_CLOEXEC) < 0 || pthread_create(&thr, NULL, fault_handler, &pc)) {
		complain("fault handler", -errno);
		goto out;
	}
	started = true;
	/* The guest runs at once, with no page of its memory present. */
	r = vcpu_run(kvm, &dst, CODE_B);
	if (write(pc.stop[1], "x", 1) != 1)
		r = r ? r : -errno;
	pthread_join(thr, NULL);
	started = false;
	if (r < 0 || pc.err < 0) {
		complain("post-copy guest", r < 0 ? r : pc.err);
		r = -1;
		goto out;
	}
	r = -1;
	/* The guest read every page; a missing one would fault here with no handler left. */
	if (pc.placed != total_pages(&dst)) {
		fprintf(stderr, "migration-loop: post-copy placed %u of %u pages\n", pc.placed,
			total_pages(&dst));
		goto out;
	}
	if (!same_memory(src, &dst)) {
		fprintf(stderr, "migration-loop: the post-copy destination differs from the "
				"source\n");
		goto out;
	}
	printf("post-copy: %u pages placed on %u faults (UFFDIO_COPY_MODE_DONTWAKE, kvmnc_flush, "
	       "UFFDIO_WAKE); destination verified\n",
	       pc.placed, pc.faults);
	r = 0;
out:
	if (started) {
		if (write(pc.stop[1], "x", 1) != 1)
			r = -1;
		pthread_join(thr, NULL);
	}
	kvmnc_snapshot_free(pc.m.src_snap);
	kvmnc_snapshot_free(pc.m.dst_snap);
	for (int i = 0; i < 2; i++)
		if (pc.stop[i] >= 0)
			close(pc.stop[i]);
	if (pc.uffd >= 0)
		close(pc.uffd);
out_vm:
	vm_teardown(&dst);
	return r;
}

int main(void)
{
	struct vm src = {.fd = -1, .vcpu = -1}, dst = src;
	uint64_t every[3 * MAX_PGS];
	int kvm, n = 0, r = 2;

	kvm = kvm_node();
	if (kvm < 0) {
		fprintf(stderr, "migration-loop: /dev/kvm: %s\n", strerror(errno));
		return 2;
	}
	if (vm_setup(kvm, &src, "source", KVMNC_MEM_LOG_DIRTY_PAGES, true) < 0 ||
	    vm_setup(kvm, &dst, "destination", 0, true) < 0)
		goto out;
	printf("blob (slot %d): %s\n", BLOB,
	       src.slots[BLOB].nc ? "non-coherent" : "plain: this host has no mechanism");

	/* The guest image: both programs, program B's table naming every page. */
	for (int i = 0; i < NSLOTS; i++)
		for (uint64_t pg = 0; pg < slot_size[i] / PAGE; pg++)
			every[n++] = slot_gpa[i] + pg * PAGE + 17;
	vmm_write(&src, CODE_A, prog_a, sizeof(prog_a));
	vmm_write(&src, CODE_B, prog_b, sizeof(prog_b));
	write_table(&src, TABLE_B, every, n, 0);
	device_dma(&src, 0);

	r = precopy(kvm, &src, &dst);
	if (r == 0)
		r = postcopy(kvm, &src);
	r = r < 0 ? 2 : r;
out:
	vm_teardown(&dst);
	vm_teardown(&src);
	close(kvm);
	return r;
}
