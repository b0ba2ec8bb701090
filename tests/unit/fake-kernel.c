// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat-kvm.h"
#include "fake-kernel.h"
#include "internal.h"

#define MAX_FDS	  64
#define MAX_SLOTS 64
#define FD_BASE	  1000

/* Numbers the fake answers although Debian 12's headers may lack them. */
#define F_CAP_NR_MEMSLOTS	   10
#define F_CAP_READONLY_MEM	   81
#define F_CAP_MULTI_ADDRESS_SPACE  118
#define F_CAP_MEMORY_ATTRIBUTES	   233
#define F_CAP_VM_TYPES		   235
#define F_MEMORY_ATTRIBUTE_PRIVATE (1u << 3)

enum kind { K_FREE, K_SYS, K_VM, K_DEV, K_VCPU, K_OTHER, K_TUN };

struct slot {
	bool used;
	uint32_t id;
	uint32_t flags;
	uint64_t gpa, size, hva;
};

struct obj {
	enum kind kind;
	int vm;		      /* owning VM's index for K_DEV/K_VCPU */
	bool nc;	      /* device: NONCOHERENT_SET done */
	int refs;	      /* VM: fds referring to it (itself + devices) */
	bool open;	      /* the fd is open (a VM may outlive its fd) */
	unsigned long vmtype; /* VM: its KVM_CREATE_VM type */
	bool virtio;	      /* device: the VIRTIO device */
	struct slot slots[MAX_SLOTS];
	int ncount;
	/* VM-wide changes: ncount leaving or reaching 0 (KVM zaps every SPTE then). */
	int transitions;
	uint64_t disabled_quirks;
	/* VM: KVM_CAP_X86_EMULATE_WBINVD on; vCPUs ever created (KVM never lowers it). */
	bool wbinvd;
	int vcpus_created;
	int v1_calls, v2_calls;
	/* K_SYS: the node's device number (major 10, minor 232 for /dev/kvm). */
	uint64_t rdev;
	/* K_VCPU: its struct kvm_run, once mapped. */
	struct kvm_run *run;
};

#define FAKE_KVM_RDEV ((10ull << 8) | 232)

static const struct fake_personality *pers;
static struct obj objs[MAX_FDS];
static int calls, fail_nth, fail_err, maps;
/* Paths the library opened or read, and VMs of type 0 it created, since the reset. */
static int paths_opened, vms_created;
static bool fail_hit;

static bool is_x86(void)
{
	return pers->vendor != NULL;
}

static bool is_amd(void)
{
	return pers->vendor && !strcmp(pers->vendor, "AuthenticAMD");
}

/* The kernel's view of the CPU: what /proc/cpuinfo shows. */
static bool kernel_ss(void)
{
	return pers->self_snoop && !pers->clearcpuid_ss;
}

static bool param_on(const char *v)
{
	return v && (v[0] == 'Y' || v[0] == '1');
}

/* Where the v2 series lets guest PAT be honored at all. */
static bool pat_honorable(void)
{
	if (!is_x86())
		return true;
	if (is_amd())
		return param_on(pers->npt);
	return param_on(pers->ept) && kernel_ss();
}

static bool vm_private(const struct obj *vm)
{
	return is_x86() && (vm->vmtype == FAKE_VM_SW_PROTECTED || vm->vmtype == FAKE_VM_TDX);
}

static bool vm_protected(const struct obj *vm)
{
	return is_x86() && vm->vmtype == FAKE_VM_TDX;
}

static int nr_as(const struct obj *vm)
{
	if (!is_x86())
		return 1;
	return vm && vm_private(vm) ? 1 : 2;
}

static int nr_memslots(void)
{
	return is_x86() ? 32764 : 32767;
}

static struct obj *obj_of(int fd)
{
	int i = fd - FD_BASE;

	if (i < 0 || i >= MAX_FDS || objs[i].kind == K_FREE || !objs[i].open)
		return NULL;
	return &objs[i];
}

static int new_obj(enum kind k, int vm)
{
	for (int i = 0; i < MAX_FDS; i++) {
		if (objs[i].kind == K_FREE) {
			memset(&objs[i], 0, sizeof(objs[i]));
			objs[i].kind = k;
			objs[i].vm = vm;
			objs[i].open = true;
			if (k == K_VM)
				objs[i].refs = 1;
			else if (vm >= 0)
				objs[vm].refs++;
			return FD_BASE + i;
		}
	}
	return -EMFILE;
}

static int new_vm(unsigned long type)
{
	int fd = new_obj(K_VM, -1);

	if (fd >= 0)
		objs[fd - FD_BASE].vmtype = type;
	return fd;
}

static void put_vm(int vm)
{
	if (--objs[vm].refs == 0)
		objs[vm].kind = K_FREE;
}

/* Every seam entry starts here: count it, and fail it if asked to. */
static int enter(void)
{
	calls++;
	if (fail_nth && calls == fail_nth) {
		fail_hit = true;
		return -fail_err;
	}
	return 0;
}

static int f_open_locked(const char *path, int flags)
{
	size_t len = strlen(path);
	int r = enter();

	(void)flags;
	if (r)
		return r;
	paths_opened++;
	if (len >= 4096)
		return -ENAMETOOLONG;
	for (const char *c = path; *c;) {
		size_t n = strcspn(c, "/");

		if (n > 255)
			return -ENAMETOOLONG;
		c += n + (c[n] == '/');
	}
	if (!strcmp(path, "/dev") || !strcmp(path, "/dev/"))
		return -EISDIR;
	if (len > 1 && path[len - 1] == '/')
		return -ENOTDIR; /* a device node named as a directory */
	if (!strcmp(path, "/dev/net/tun"))
		return new_obj(K_TUN, -1);
	if (!strcmp(path, "/dev/null"))
		return new_obj(K_OTHER, -1);
	/* Aliases of one node: the same device number. */
	if (strcmp(path, KVMNC_DEFAULT_DEV) && strcmp(path, "/dev/./kvm") &&
	    strcmp(path, "//dev/kvm") && strcmp(path, "/dev/kvm-alt"))
		return -ENOENT;
	if (pers->open_err)
		return -pers->open_err;
	r = new_obj(K_SYS, -1);
	if (r >= 0)
		objs[r - FD_BASE].rdev =
			strcmp(path, "/dev/kvm-alt") ? FAKE_KVM_RDEV : FAKE_KVM_RDEV + 1;
	return r;
}

static int f_close_locked(int fd)
{
	struct obj *o;
	int r = enter();

	/* Like Linux, the fd is gone even when close reports an error. */
	o = obj_of(fd);
	if (!o)
		return -EBADF;
	o->open = false;
	if (o->kind == K_DEV) {
		if (o->nc && --objs[o->vm].ncount == 0)
			objs[o->vm].transitions++;
		o->kind = K_FREE;
		put_vm(o->vm);
	} else if (o->kind == K_VCPU) {
		o->kind = K_FREE;
		put_vm(o->vm);
	} else if (o->kind == K_VM) {
		put_vm((int)(o - objs));
	} else {
		o->kind = K_FREE;
	}
	return r;
}

static int cap_value(const struct obj *o, unsigned long cap)
{
	bool vm = o->kind == K_VM;

	switch (cap) {
	case KVM_CAP_USER_MEMORY:
		return 1;
	case KVM_CAP_USER_MEMORY2:
		return pers->user_memory2;
	case KVM_CAP_DISABLE_QUIRKS2:
		return (int)(vm ? pers->quirks_vm : pers->quirks_sys);
	case 236:
		if (vm && pers->vm_flag_cap >= 0 && pers->cap236 &&
		    (pers->flag_v1 || pers->flag_v2) && !pers->cap239)
			return pers->vm_flag_cap;
		return pers->cap236;
	case 239:
		if (vm && pers->vm_flag_cap >= 0 && pers->cap239)
			return pers->vm_flag_cap;
		return pers->cap239;
	case 250:
		if (vm && pers->vm_flag_cap >= 0 && pers->cap250)
			return pers->vm_flag_cap;
		return pers->cap250;
	case 251:
		/* A VM capability: the library must ask a VM. */
		return vm && !vm_protected(o) ? pers->cap251 : 0;
	case F_CAP_NR_MEMSLOTS:
		return nr_memslots();
	case F_CAP_MULTI_ADDRESS_SPACE:
		return is_x86() ? nr_as(vm ? o : NULL) : 0;
	case F_CAP_READONLY_MEM:
		return vm ? !vm_protected(o) : 1;
	case F_CAP_MEMORY_ATTRIBUTES:
		/* 6.8+ with private memory support. */
		if (!pers->user_memory2 || !is_x86())
			return 0;
		return !vm || vm_private(o) ? F_MEMORY_ATTRIBUTE_PRIVATE : 0;
	case F_CAP_VM_TYPES:
		return pers->user_memory2 && is_x86() ? (int)(1u | pers->vm_types) : 0;
	}
	return 0;
}

/* The next @delete_fail_times deletes of an existing slot fail (fake_fail_deletes()). */
static int delete_fail_times, delete_fail_err;
/* Every memslot that asks for KVM_MEM_NON_COHERENT_DMA fails (fake_fail_flag_trials()). */
static int flag_trial_err;

static int set_region(struct obj *vm, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
		      uint64_t hva, bool v2)
{
	uint32_t valid = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
	struct slot *s = NULL, *free_s = NULL;
	bool flag_ok = v2 ? pers->flag_v2 : pers->flag_v1;

	if (v2) {
		valid |= KVM_MEM_GUEST_MEMFD;
		vm->v2_calls++;
	} else {
		vm->v1_calls++;
	}
	if (pers->v2 && (!pat_honorable() || vm_private(vm)))
		flag_ok = false;
	if (flag_ok)
		valid |= KVM_MEM_NON_COHERENT_DMA;
	if (flags & ~valid)
		return -EINVAL;
	if ((slot >> 16) >= (uint32_t)nr_as(vm) || (slot & 0xffff) >= (uint32_t)nr_memslots())
		return -EINVAL;
	for (int i = 0; i < MAX_SLOTS; i++) {
		if (vm->slots[i].used && vm->slots[i].id == slot)
			s = &vm->slots[i];
		else if (!vm->slots[i].used && !free_s)
			free_s = &vm->slots[i];
	}
	if (flag_trial_err && size && (flags & KVM_MEM_NON_COHERENT_DMA))
		return -flag_trial_err;
	if (size == 0) {
		if (!s)
			return -EINVAL;
		if (delete_fail_times) {
			delete_fail_times--;
			return -delete_fail_err;
		}
		s->used = false;
		return 0;
	}
	for (int i = 0; i < MAX_SLOTS; i++) {
		struct slot *o = &vm->slots[i];

		if (o->used && o != s && (o->id >> 16) == (slot >> 16) && gpa < o->gpa + o->size &&
		    o->gpa < gpa + size)
			return -EEXIST;
	}
	if (s) {
		/* As KVM: only the GPA and the mutable flags may change. */
		if (s->size != size || s->hva != hva ||
		    ((s->flags ^ flags) & (KVM_MEM_NON_COHERENT_DMA | KVM_MEM_READONLY)))
			return -EINVAL;
	} else {
		if (!free_s)
			return -ENOSPC;
		s = free_s;
	}
	*s = (struct slot){
		.used = true, .id = slot, .flags = flags, .gpa = gpa, .size = size, .hva = hva};
	return 0;
}

/* Which registered type @type is, or 0 if none. */
static bool dev_registered(uint32_t type, bool *virtio)
{
	if (pers->dev_type && type == pers->dev_type) {
		*virtio = pers->dev_is_virtio;
		return true;
	}
	if (pers->dev_type2 && type == pers->dev_type2) {
		*virtio = pers->dev2_is_virtio;
		return true;
	}
	return false;
}

static int vm_ioctl(struct obj *o, unsigned long req, unsigned long arg)
{
	int vm = (int)(o - objs);

	switch (req) {
	case KVM_CHECK_EXTENSION:
		return cap_value(o, arg);
	case KVM_CREATE_DEVICE: {
		struct kvm_create_device *cd = (struct kvm_create_device *)arg;
		bool virtio = false;
		int fd;

		if (!dev_registered(cd->type, &virtio))
			return -ENODEV;
		if (virtio && pers->v2 && !pat_honorable())
			return -ENODEV;
		if (cd->flags & KVM_CREATE_DEVICE_TEST)
			return 0;
		if (virtio && pers->v2 && vm_private(o))
			return -ENODEV;
		fd = new_obj(K_DEV, vm);
		if (fd < 0)
			return fd;
		objs[fd - FD_BASE].virtio = virtio;
		cd->fd = (uint32_t)fd;
		return 0;
	}
	case KVM_SET_USER_MEMORY_REGION: {
		const struct kvm_userspace_memory_region *m = (const void *)arg;

		return set_region(o, m->slot, m->flags, m->guest_phys_addr, m->memory_size,
				  m->userspace_addr, false);
	}
	case KVM_SET_USER_MEMORY_REGION2: {
		const struct kvm_userspace_memory_region2 *m = (const void *)arg;

		if (!pers->user_memory2)
			return -ENOTTY;
		return set_region(o, m->slot, m->flags, m->guest_phys_addr, m->memory_size,
				  m->userspace_addr, true);
	}
	case KVM_ENABLE_CAP: {
		const struct kvm_enable_cap *c = (const void *)arg;

		if (c->cap == 251 && pers->cap251 && !vm_protected(o)) {
			if (pers->wbinvd_other || c->flags || c->args[0] || c->args[1] ||
			    c->args[2] || c->args[3] || o->vcpus_created)
				return -EINVAL;
			o->wbinvd = true;
			return 0;
		}
		if (c->cap != KVM_CAP_DISABLE_QUIRKS2 || (c->args[0] & ~pers->quirks_vm))
			return -EINVAL;
		o->disabled_quirks |= c->args[0];
		return 0;
	}
	case KVM_CREATE_VCPU: {
		int fd = new_obj(K_VCPU, vm);

		o->vcpus_created += fd >= 0;
		return fd;
	}
	}
	return -ENOTTY;
}

static int dev_ioctl(struct obj *o, unsigned long req, unsigned long arg)
{
	const struct kvm_device_attr *a = (const void *)arg;
	bool ours = o->virtio && a->group == KVM_DEV_VIRTIO_NONCOHERENT &&
		    a->attr == KVM_DEV_VIRTIO_NONCOHERENT_SET;

	switch (req) {
	case KVM_HAS_DEVICE_ATTR:
		return ours ? 0 : -ENXIO;
	case KVM_SET_DEVICE_ATTR:
		if (!ours)
			return -ENXIO;
		if (!o->nc) {
			o->nc = true;
			if (objs[o->vm].ncount++ == 0)
				objs[o->vm].transitions++;
		}
		return 0;
	}
	return -ENOTTY;
}

/*
 * A vCPU runs the access trial's two instructions: it reaches the HLT when
 * the memory at GPA 0 and the data slot are there, unless bit 3 is
 * KVM Userfault's, whose flagged slot exits with KVM_EXIT_MEMORY_FAULT.
 */
static int vcpu_ioctl(struct obj *o, unsigned long req)
{
	const struct obj *vm = &objs[o->vm];
	bool code = false, userfault = false;

	switch (req) {
	case KVM_GET_SREGS:
	case KVM_SET_SREGS:
	case KVM_SET_REGS:
		return 0;
	case KVM_RUN:
		if (!o->run)
			return -EINVAL;
		for (int i = 0; i < MAX_SLOTS; i++) {
			const struct slot *sl = &vm->slots[i];

			if (!sl->used)
				continue;
			code |= sl->gpa == 0;
			userfault |= pers->bit3_userfault && (sl->flags & KVM_MEM_NON_COHERENT_DMA);
		}
		if (userfault) {
			o->run->exit_reason = KVM_EXIT_MEMORY_FAULT;
			return -EFAULT;
		}
		o->run->exit_reason = code ? KVM_EXIT_HLT : KVM_EXIT_INTERNAL_ERROR;
		return 0;
	}
	return -EINVAL; /* x86's kvm_arch_vcpu_ioctl default */
}

static int f_ioctl_locked(int fd, unsigned long req, unsigned long arg)
{
	struct obj *o;
	int r = enter();

	if (r)
		return r;
	o = obj_of(fd);
	if (!o)
		return -EBADF;
	switch (o->kind) {
	case K_SYS:
		if (req == KVM_GET_API_VERSION)
			return pers->api_version;
		if (req == KVM_GET_VCPU_MMAP_SIZE)
			return 3 * 4096;
		if (req == KVM_CHECK_EXTENSION)
			return cap_value(o, arg);
		if (req == KVM_CREATE_VM) {
			if (arg == 0 && pers->create_vm_err)
				return -pers->create_vm_err;
			if (arg != 0 && (arg >= 32 || !(pers->vm_types & (1u << arg))))
				return -EINVAL;
			vms_created += arg == 0;
			return new_vm(arg);
		}
		return -ENOTTY;
	case K_VM:
		return vm_ioctl(o, req, arg);
	case K_DEV:
		return dev_ioctl(o, req, arg);
	case K_VCPU:
		return vcpu_ioctl(o, req);
	case K_TUN:
		return -EBADFD; /* tun before TUNSETIFF */
	default:
		return -ENOTTY;
	}
}

/* The fake has no dup(): one file per fd number. */
static int f_same_file_locked(int a, int b)
{
	int r = enter();

	if (r)
		return r;
	if (!obj_of(a) || !obj_of(b))
		return -EBADF;
	return a == b ? 0 : 1;
}

static int f_fd_rdev_locked(int fd, uint64_t *rdev)
{
	struct obj *o;
	int r = enter();

	if (r)
		return r;
	o = obj_of(fd);
	if (!o)
		return -EBADF;
	if (o->kind != K_SYS)
		return -ENOTTY;
	*rdev = o->rdev;
	return 0;
}

static int f_fcntl_getfd_locked(int fd)
{
	int r = enter();

	if (r)
		return r;
	return obj_of(fd) ? 0 : -EBADF;
}

/*
 * Allocations are counted apart from system calls (the syscall fault tests
 * keep their call numbers), atomically: the library allocates on any thread
 * and outside the fake's lock.
 */
static int alloc_calls, alloc_fail_nth;
static bool alloc_fail_hit;

static bool alloc_enter(void)
{
	int n = __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED);

	if (n == __atomic_load_n(&alloc_fail_nth, __ATOMIC_RELAXED)) {
		__atomic_store_n(&alloc_fail_hit, true, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

static void *f_malloc(size_t size)
{
	return alloc_enter() ? malloc(size) : NULL;
}

static void *f_calloc(size_t n, size_t size)
{
	return alloc_enter() ? calloc(n, size) : NULL;
}

static void *f_realloc(void *p, size_t size)
{
	return alloc_enter() ? realloc(p, size) : NULL;
}

void fake_fail_flag_trials(int err)
{
	flag_trial_err = err;
}

/* Set from the test's thread while no library call runs. */
void fake_fail_deletes(int times, int err)
{
	delete_fail_times = times;
	delete_fail_err = err;
}

void fake_fail_alloc_nth(int nth)
{
	int base = __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);

	if (nth)
		__atomic_store_n(&alloc_fail_hit, false, __ATOMIC_RELAXED);
	__atomic_store_n(&alloc_fail_nth, nth ? base + nth : 0, __ATOMIC_RELAXED);
}

int fake_allocs(void)
{
	return __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
}

bool fake_alloc_fail_hit(void)
{
	return __atomic_load_n(&alloc_fail_hit, __ATOMIC_RELAXED);
}

/*
 * The mappings outstanding, so that fake_reset() can drop what the library
 * left mapped on purpose (a process's exit would), and leak checkers see
 * only real leaks.
 */
static void *live_maps[64];

static void map_note(void *p, bool add)
{
	for (size_t i = 0; i < sizeof(live_maps) / sizeof(live_maps[0]); i++) {
		if (add ? !live_maps[i] : live_maps[i] == p) {
			live_maps[i] = add ? p : NULL;
			return;
		}
	}
}

static void drop_maps(void)
{
	for (size_t i = 0; i < sizeof(live_maps) / sizeof(live_maps[0]); i++) {
		free(live_maps[i]);
		live_maps[i] = NULL;
	}
}

static int f_mmap_anon_locked(size_t len, void **out)
{
	int r = enter();

	if (r)
		return r;
	/* A mapping is an allocation too: the allocation faults fail it as well. */
	if (!alloc_enter())
		return -ENOMEM;
	*out = aligned_alloc(4096, len);
	if (!*out)
		return -ENOMEM;
	map_note(*out, true);
	maps++;
	return 0;
}

static int f_mmap_fd_locked(int fd, size_t len, void **out)
{
	struct obj *o;
	int r = enter();

	if (r)
		return r;
	o = obj_of(fd);
	if (!o || o->kind != K_VCPU)
		return -ENODEV;
	if (!alloc_enter())
		return -ENOMEM;
	*out = calloc(1, len);
	if (!*out)
		return -ENOMEM;
	o->run = *out;
	map_note(*out, true);
	maps++;
	return 0;
}

static int f_munmap_locked(void *addr, size_t len)
{
	int r = enter();

	(void)len;
	for (int i = 0; i < MAX_FDS; i++)
		if (objs[i].kind == K_VCPU && objs[i].run == addr)
			objs[i].run = NULL;
	map_note(addr, false);
	free(addr);
	maps--;
	return r;
}

/* The first processor's block of /proc/cpuinfo, as the kernel sees the CPU. */
static void cpuinfo(char *buf, size_t len)
{
	if (!is_x86()) {
		snprintf(buf, len,
			 "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm\n");
		return;
	}
	snprintf(buf, len,
		 "processor\t: 0\nvendor_id\t: %s\ncpu family\t: 6\nflags\t\t: fpu vme de pse "
		 "tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx "
		 "fxsr sse sse2 %sht tm pbe syscall nx lm constant_tsc %s\nbugs\t\t: "
		 "spectre_v1\n\nprocessor\t: 1\nflags\t\t: fpu %s\n",
		 pers->vendor, kernel_ss() ? "ss " : "", is_amd() ? "svm npt" : "vmx ept",
		 kernel_ss() ? "ss" : "");
}

static ssize_t f_read_file_locked(const char *path, char *buf, size_t len)
{
	const char *val = NULL;
	int r = enter();

	if (r)
		return r;
	paths_opened++;
	if (pers->jail && (!strncmp(path, "/sys/", 5) || !strncmp(path, "/proc/", 6)))
		return -ENOENT;
	if (!strcmp(path, "/proc/cpuinfo")) {
		cpuinfo(buf, len);
		return (ssize_t)strlen(buf);
	}
	if (!strcmp(path, "/sys/module/kvm_intel/parameters/ept"))
		val = pers->ept;
	else if (!strcmp(path, "/sys/module/kvm_amd/parameters/npt"))
		val = pers->npt;
	else if (!strcmp(path, "/sys/module/kvm/parameters/halt_poll_ns"))
		val = "200000"; /* kvm.ko's own parameter: sysfs is there */
	if (!val)
		return -ENOENT;
	snprintf(buf, len, "%s\n", val);
	return (ssize_t)strlen(buf);
}

static int f_uname_locked(struct utsname *u)
{
	int r = enter();

	if (r)
		return r;
	memset(u, 0, sizeof(*u));
	snprintf(u->release, sizeof(u->release), "%s", pers->release);
	return 0;
}

/*
 * The cache instructions are this CPU's, as far as the test allows: the
 * copy helpers execute them, so the fake may hide one but never invent it.
 */
#define CPUID_1_EDX_CLFLUSH    (1u << 19)
#define CPUID_1_EBX_LINE       0xff00u
#define CPUID_7_EBX_CLFLUSHOPT (1u << 23)
#define CPUID_7_EBX_CLWB       (1u << 24)

static uint32_t cache_edx1 = CPUID_1_EDX_CLFLUSH;
static uint32_t cache_ebx7 = CPUID_7_EBX_CLFLUSHOPT | CPUID_7_EBX_CLWB;

static uint32_t host_reg(uint32_t leaf, int reg, uint32_t mask)
{
	uint32_t r[4];

	return kvmnc_sys_real.cpuid(leaf, 0, r) == 0 ? r[reg] & mask : 0;
}

static int f_cpuid_locked(uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	int r = enter();

	(void)subleaf;
	if (r)
		return r;
	if (!pers->vendor)
		return -EOPNOTSUPP;
	memset(regs, 0, 4 * sizeof(uint32_t));
	if (leaf == 0) {
		regs[0] = 0xd;
		memcpy(&regs[1], pers->vendor, 4);
		memcpy(&regs[3], pers->vendor + 4, 4);
		memcpy(&regs[2], pers->vendor + 8, 4);
	} else if (leaf == 1) {
		/* The instruction does not know about clearcpuid=. */
		regs[3] = pers->self_snoop ? 1u << 27 : 0;
		regs[3] |= host_reg(1, 3, cache_edx1);
		regs[1] = host_reg(1, 1, CPUID_1_EBX_LINE);
	} else if (leaf == 7) {
		regs[1] = host_reg(7, 1, cache_ebx7);
	}
	return 0;
}

void fake_cpuid_cache(bool clflush, bool clflushopt, bool clwb)
{
	cache_edx1 = clflush ? CPUID_1_EDX_CLFLUSH : 0;
	cache_ebx7 = (clflushopt ? CPUID_7_EBX_CLFLUSHOPT : 0) | (clwb ? CPUID_7_EBX_CLWB : 0);
	/* What the engine selected came from the seam: select again through it. */
	kvmnc_cpu_reset();
}

/*
 * The fake is one big lock, like a kernel seen from userspace: each call is
 * atomic, so the library's threads can race each other over it.
 */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;

#define LOCKED(ret, name, params, args)                                                            \
	static ret f_##name params                                                                 \
	{                                                                                          \
		ret r;                                                                             \
		pthread_mutex_lock(&fake_lock);                                                    \
		r = f_##name##_locked args;                                                        \
		pthread_mutex_unlock(&fake_lock);                                                  \
		return r;                                                                          \
	}

LOCKED(int, close, (int fd), (fd))
LOCKED(int, ioctl, (int fd, unsigned long req, unsigned long arg), (fd, req, arg))
LOCKED(int, fcntl_getfd, (int fd), (fd))
LOCKED(int, fd_rdev, (int fd, uint64_t *rdev), (fd, rdev))
LOCKED(int, same_file, (int a, int b), (a, b))
LOCKED(int, mmap_anon, (size_t len, void **out), (len, out))
LOCKED(int, munmap, (void *addr, size_t len), (addr, len))
LOCKED(int, mmap_fd, (int fd, size_t len, void **out), (fd, len, out))
LOCKED(ssize_t, read_file, (const char *path, char *buf, size_t len), (path, buf, len))
LOCKED(int, uname, (struct utsname * u), (u))
LOCKED(int, cpuid, (uint32_t leaf, uint32_t subleaf, uint32_t regs[4]), (leaf, subleaf, regs))

static pthread_mutex_t block_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cond = PTHREAD_COND_INITIALIZER;
static char block_path[64];
static bool block_waiting;

/* An open that takes as long as the test wants, holding none of the fake's locks. */
static int f_open(const char *path, int flags)
{
	int r;

	pthread_mutex_lock(&block_lock);
	while (block_path[0] && !strcmp(path, block_path)) {
		block_waiting = true;
		pthread_cond_broadcast(&block_cond);
		pthread_cond_wait(&block_cond, &block_lock);
	}
	block_waiting = false;
	pthread_mutex_unlock(&block_lock);

	pthread_mutex_lock(&fake_lock);
	r = f_open_locked(path, flags);
	pthread_mutex_unlock(&fake_lock);
	return r;
}

void fake_block_open(const char *path)
{
	pthread_mutex_lock(&block_lock);
	snprintf(block_path, sizeof(block_path), "%s", path);
	pthread_mutex_unlock(&block_lock);
}

void fake_unblock_open(void)
{
	pthread_mutex_lock(&block_lock);
	block_path[0] = '\0';
	pthread_cond_broadcast(&block_cond);
	pthread_mutex_unlock(&block_lock);
}

bool fake_open_blocked(void)
{
	bool w;

	pthread_mutex_lock(&block_lock);
	w = block_waiting;
	pthread_mutex_unlock(&block_lock);
	return w;
}

static const struct kvmnc_sys fake_sys = {
	.open = f_open,
	.close = f_close,
	.ioctl = f_ioctl,
	.fcntl_getfd = f_fcntl_getfd,
	.fd_rdev = f_fd_rdev,
	.same_file = f_same_file,
	.mmap_anon = f_mmap_anon,
	.mmap_fd = f_mmap_fd,
	.munmap = f_munmap,
	.read_file = f_read_file,
	.uname = f_uname,
	.cpuid = f_cpuid,
	.malloc = f_malloc,
	.calloc = f_calloc,
	.realloc = f_realloc,
};

/* A child of fork() must find the fake's locks free, as the kernel's are. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&block_lock);
	pthread_mutex_lock(&fake_lock);
}

static void fork_release(void)
{
	pthread_mutex_unlock(&fake_lock);
	pthread_mutex_unlock(&block_lock);
}

static void register_atfork(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
}

void fake_reset(const struct fake_personality *p)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	/* Before the library's own handler, so that its prepare runs first. */
	pthread_once(&once, register_atfork);
	pers = p;
	memset(objs, 0, sizeof(objs));
	drop_maps();
	fail_nth = fail_err = maps = 0;
	paths_opened = vms_created = 0;
	delete_fail_times = delete_fail_err = flag_trial_err = 0;
	fake_fail_alloc_nth(0);
	cache_edx1 = CPUID_1_EDX_CLFLUSH;
	cache_ebx7 = CPUID_7_EBX_CLFLUSHOPT | CPUID_7_EBX_CLWB;
	kvmnc_sys = &fake_sys;
	/* Also selects the cache instructions again, through the fake's CPUID... */
	kvmnc_probe_reset();
	/* ... which the counts of a test do not include. */
	calls = 0;
	fail_hit = false;
}

void fake_uninstall(void)
{
	kvmnc_sys = &kvmnc_sys_real;
	drop_maps();
	kvmnc_probe_reset();
}

void fake_fail_nth(int nth, int err)
{
	fail_nth = nth ? calls + nth : 0;
	fail_err = err;
	if (nth)
		fail_hit = false;
}

int fake_paths_opened(void)
{
	return paths_opened;
}

int fake_vms_created(void)
{
	return vms_created;
}

int fake_calls(void)
{
	return calls;
}

bool fake_fail_hit(void)
{
	return fail_hit;
}

int fake_open_fds(void)
{
	int n = 0;

	for (int i = 0; i < MAX_FDS; i++)
		n += objs[i].kind != K_FREE && objs[i].open;
	return n;
}

int fake_open_maps(void)
{
	return maps;
}

int fake_open_system_fd(void)
{
	return new_obj(K_SYS, -1);
}

int fake_open_other_fd(void)
{
	return new_obj(K_OTHER, -1);
}

int fake_open_vcpu_fd(int vm_fd)
{
	int fd = new_obj(K_VCPU, vm_fd - FD_BASE);

	objs[vm_fd - FD_BASE].vcpus_created += fd >= 0;
	return fd;
}

int fake_create_vm(void)
{
	return new_vm(0);
}

int fake_create_vm_type(unsigned long type)
{
	return new_vm(type);
}

void fake_close(int fd)
{
	int saved = fail_nth;

	pthread_mutex_lock(&fake_lock);
	fail_nth = 0;
	calls--; /* not the library's call */
	f_close_locked(fd);
	fail_nth = saved;
	pthread_mutex_unlock(&fake_lock);
}

int fake_vmm_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int saved = fail_nth, r;

	pthread_mutex_lock(&fake_lock);
	fail_nth = 0;
	r = f_ioctl_locked(fd, req, arg);
	calls--;
	fail_nth = saved;
	pthread_mutex_unlock(&fake_lock);
	return r;
}

void fake_vm_state(int vm_fd, struct fake_vm_state *st)
{
	const struct obj *vm = &objs[vm_fd - FD_BASE];

	memset(st, 0, sizeof(*st));
	for (int i = 0; i < MAX_SLOTS; i++)
		st->nslots += vm->slots[i].used;
	st->noncoherent_devices = vm->ncount;
	for (int i = 0; i < MAX_FDS; i++)
		st->devices +=
			objs[i].kind == K_DEV && objs[i].open && objs[i].vm == vm_fd - FD_BASE;
	st->disabled_quirks = vm->disabled_quirks;
	st->wbinvd_emulation = vm->wbinvd;
	st->v1_calls = vm->v1_calls;
	st->vm_wide_transitions = vm->transitions;
	st->v2_calls = vm->v2_calls;
}

int64_t fake_slot_flags(int vm_fd, uint32_t slot)
{
	const struct obj *vm = &objs[vm_fd - FD_BASE];

	for (int i = 0; i < MAX_SLOTS; i++)
		if (vm->slots[i].used && vm->slots[i].id == slot)
			return vm->slots[i].flags;
	return -1;
}

/* The kernels a VMM meets: the rows of docs/support-matrix.tsv name them, and more. */
const struct fake_personality fake_personalities[] = {
	{
		.name = "debian-6.1",
		.release = "6.1.0-28-amd64",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.quirks_sys = 0xff,
		.quirks_vm = 0xff,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "stable-6.12-intel",
		.release = "6.12.117-amd64",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "stable-6.12-intel-nosnoop",
		.release = "6.12.117-amd64",
		.vendor = "GenuineIntel",
		.self_snoop = false,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "upstream-6.18-intel",
		.release = "6.18.0",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x7ff,
		.quirks_vm = 0x7ff,
		.cap236 = 1,
		.cap239 = 0,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "amd-npt",
		.release = "6.12.117-amd64",
		.vendor = "AuthenticAMD",
		.self_snoop = false,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.npt = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "amd-npt-6.1",
		.release = "6.1.0-28-amd64",
		.vendor = "AuthenticAMD",
		.api_version = 12,
		.quirks_sys = 0xff,
		.quirks_vm = 0xff,
		.npt = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "chromeos-6.6",
		.release = "6.6.50-chromeos",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = false,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.flag_v1 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "chromeos-6.12",
		.release = "6.12.40-chromeos",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff, /* stable 6.12.78+ base: has the quirk */
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	/*
	 * Issue 19, bug 4: upstream 6.18 with KVM Userfault v3 applied. Bit 3
	 * is KVM_MEM_USERFAULT and accepted; capability 236 is
	 * KVM_CAP_PRE_FAULT_MEMORY.
	 */
	{
		.name = "userfault-6.18",
		.release = "6.18.3-userfault",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x7ff,
		.quirks_vm = 0x7ff,
		.cap236 = 1,
		.flag_v2 = true,
		.bit3_userfault = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	/* A kernel that takes bit 3 without any capability for it, and a guest access works. */
	{
		.name = "bit3-uncapped",
		.release = "6.18.3-bit3",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x7ff,
		.quirks_vm = 0x7ff,
		.cap236 = 1,
		.flag_v2 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	/* Issue 19, bug 3: the same kernels seen from a chroot jail without /sys and /proc. */
	{
		.name = "jailed-patched-6.12",
		.release = "6.12.117-kvmnc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.ept = "Y",
		.jail = true,
		.vm_flag_cap = -1,
	},
	{
		.name = "jailed-chromeos-6.6",
		.release = "6.6.50-chromeos",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = false,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.flag_v1 = true,
		.ept = "Y",
		.jail = true,
		.vm_flag_cap = -1,
	},
	{
		.name = "patched-6.12",
		.release = "6.12.117-kvmnc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "patched-6.12-amd-shadow",
		.release = "6.12.117-kvmnc",
		.vendor = "AuthenticAMD",
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.dev_type = 32,
		.dev_is_virtio = true,
		.npt = "N",
		.vm_flag_cap = -1,
	},
	{
		.name = "patched-6.12-private-vm",
		.release = "6.12.117-kvmnc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.ept = "Y",
		.vm_flag_cap = 0,
	},
	{
		.name = "pvm-shadow",
		.release = "6.18.44-fc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x5ff,
		.quirks_vm = 0x5ff,
		.vm_flag_cap = -1,
	},
	{
		.name = "type32-collision",
		.release = "6.20.0-other",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.dev_type = 32,
		.dev_is_virtio = false,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "arm64",
		.release = "6.12.0-arm64",
		.vendor = NULL,
		.api_version = 12,
		.user_memory2 = true,
		.cap239 = 1, /* KVM_CAP_ARM_WRITABLE_IMP_ID_REGS on 6.15+ */
		.vm_flag_cap = -1,
	},
	{
		.name = "no-scratch-vm",
		.release = "6.12.117-amd64",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.create_vm_err = EMFILE,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "no-permission",
		.release = "6.12.117-amd64",
		.vendor = "GenuineIntel",
		.open_err = EACCES,
		.api_version = 12,
		.vm_flag_cap = -1,
	},
	{
		.name = "old-api",
		.release = "2.6.20",
		.vendor = "GenuineIntel",
		.api_version = 11,
		.vm_flag_cap = -1,
	},
	/* Appended below: fuzz seeds index the table, so the order above stays. */
	{
		/* The RFC as posted: KVM_DEV_TYPE_VIRTIO after RISCV_AIA, i.e. 12. */
		.name = "seed-rfc-6.12",
		.release = "6.12.0-rfc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.dev_type = 12,
		.dev_is_virtio = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* 6.16+ LoongArch: type 12 is KVM_DEV_TYPE_LOONGARCH_IPI. */
		.name = "loongarch-type12",
		.release = "6.16.0-loongarch",
		.vendor = NULL,
		.api_version = 12,
		.user_memory2 = true,
		.dev_type = 12,
		.dev_is_virtio = false,
		.vm_flag_cap = -1,
	},
	{
		/* Upstream 6.16 with TDX: the quirk is forced off for TDX VMs. */
		.name = "tdx-6.16",
		.release = "6.16.0",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x7ff,
		.quirks_vm = 0x7ff,
		.cap236 = 1,
		.ept = "Y",
		.vm_flag_cap = -1,
		.vm_types = 1u << FAKE_VM_TDX,
	},
	{
		/* arm64 with a small PARange: KVM_CREATE_VM(0) asks for a 40-bit IPA. */
		.name = "needs-vm-type",
		.release = "6.12.0-arm64",
		.vendor = NULL,
		.api_version = 12,
		.create_vm_err = EINVAL,
		.user_memory2 = true,
		.vm_flag_cap = -1,
		.vm_types = 1u << 4,
	},
	{
		/* patched-6.12 seen from a VMM whose seccomp filter denies KVM_CREATE_VM. */
		.name = "sandboxed",
		.release = "6.12.117-kvmnc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.create_vm_err = EPERM,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* patched-6.12 for an unprivileged VMM that was handed its VM fd. */
		.name = "unprivileged",
		.release = "6.12.117-kvmnc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.open_err = EACCES,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* stable 6.12.117 booted with clearcpuid=ss: CPUID still says ss. */
		.name = "stable-6.12-clearcpuid-ss",
		.release = "6.12.117-amd64",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.clearcpuid_ss = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* The v1 series with clearcpuid=ss: device and flag work, unsafely. */
		.name = "patched-v1-nosnoop",
		.release = "6.12.117-kvmnc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.clearcpuid_ss = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* The v1 series with kvm_intel.ept=0: device and flag change nothing. */
		.name = "patched-v1-ept0",
		.release = "6.12.117-kvmnc",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.ept = "N",
		.vm_flag_cap = -1,
	},
	{
		/* The v2 series on the same host: device and flag refused. */
		.name = "patched-v2-nosnoop",
		.release = "6.12.117-kvmnc2",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.clearcpuid_ss = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.v2 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		.name = "patched-v2-ept0",
		.release = "6.12.117-kvmnc2",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x1ff,
		.quirks_vm = 0x1ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.v2 = true,
		.ept = "N",
		.vm_flag_cap = -1,
	},
	{
		/* The v2 series on a good host; VMs of type 1 have private memory. */
		.name = "patched-v2",
		.release = "6.12.117-kvmnc2",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.v2 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
		.vm_types = 1u << FAKE_VM_SW_PROTECTED,
	},
	{
		/*
		 * The series' v3 on Linux 7.2: the flag's capability is 250, the
		 * device type 17, WBINVD emulation on request (251); 239 is arm64's.
		 */
		.name = "patched-7.2-v3",
		.release = "7.2.13-kvmnc3",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0xfff,
		.quirks_vm = 0xfff,
		.cap236 = 1,
		.cap250 = 1,
		.cap251 = 1,
		.flag_v2 = true,
		.dev_type = 17,
		.dev_is_virtio = true,
		.v2 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
		.vm_types = 1u << FAKE_VM_TDX,
	},
	{
		/* The v3 series backported to 6.12: 239, device type 32, and 251. */
		.name = "backport-6.12-v3",
		.release = "6.12.118-kvmnc3",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0x3ff,
		.quirks_vm = 0x3ff,
		.cap236 = 1,
		.cap239 = 1,
		.cap251 = 1,
		.flag_v1 = true,
		.flag_v2 = true,
		.dev_type = 32,
		.dev_is_virtio = true,
		.v2 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* v3 on an AMD host with NPT: native, and WBINVD emulation on request. */
		.name = "patched-7.2-v3-amd",
		.release = "7.2.13-kvmnc3",
		.vendor = "AuthenticAMD",
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0xfff,
		.quirks_vm = 0xfff,
		.cap236 = 1,
		.cap250 = 1,
		.cap251 = 1,
		.flag_v2 = true,
		.dev_type = 17,
		.dev_is_virtio = true,
		.v2 = true,
		.npt = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* A later kernel that gave 250 and 251 other meanings: no flag, no emulation. */
		.name = "caps-250-251-other",
		.release = "7.9.0",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.user_memory2 = true,
		.quirks_sys = 0xfff,
		.quirks_vm = 0xfff,
		.cap236 = 1,
		.cap250 = 1,
		.cap251 = 1,
		.wbinvd_other = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* patched-7.2-v3 under a seccomp filter that denies KVM_CREATE_VM. */
		.name = "sandboxed-7.2-v3",
		.release = "7.2.13-kvmnc3",
		.vendor = "GenuineIntel",
		.self_snoop = true,
		.api_version = 12,
		.create_vm_err = EPERM,
		.user_memory2 = true,
		.quirks_sys = 0xfff,
		.quirks_vm = 0xfff,
		.cap236 = 1,
		.cap250 = 1,
		.cap251 = 1,
		.flag_v2 = true,
		.dev_type = 17,
		.dev_is_virtio = true,
		.v2 = true,
		.ept = "Y",
		.vm_flag_cap = -1,
	},
	{
		/* arm64 7.2: 239 is KVM_CAP_ARM_WRITABLE_IMP_ID_REGS; 250 and 251 mean nothing. */
		.name = "arm64-7.2",
		.release = "7.2.13-arm64",
		.vendor = NULL,
		.api_version = 12,
		.user_memory2 = true,
		.cap239 = 1,
		.cap250 = 1,
		.cap251 = 1,
		.vm_flag_cap = -1,
	},
};

const int fake_npersonalities = sizeof(fake_personalities) / sizeof(fake_personalities[0]);

const struct fake_personality *fake_personality(const char *name)
{
	for (int i = 0; i < fake_npersonalities; i++)
		if (!strcmp(fake_personalities[i].name, name))
			return &fake_personalities[i];
	return NULL;
}
