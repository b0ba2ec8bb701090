/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake KVM behind the library's system-call seam. A personality describes
 * one kernel a VMM meets (the rows of docs/support-matrix.tsv, and more);
 * the fake answers like that kernel and records what the library did to
 * it, so tests can assert both the answers and the side effects, and can
 * fail any one call (or allocation) on purpose.
 */
#ifndef KVMNC_FAKE_KERNEL_H
#define KVMNC_FAKE_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

struct fake_personality {
	const char *name;
	const char *release;
	/* CPUID vendor; NULL: not x86 (cpuid unavailable). */
	const char *vendor;
	bool self_snoop;
	/* CPUID reports self-snoop but the kernel cleared it (clearcpuid=ss). */
	bool clearcpuid_ss;
	/* errno for opening the node; 0 opens. */
	int open_err;
	int api_version;
	/* errno for KVM_CREATE_VM of type 0 (the VMM's own VM is made apart). */
	int create_vm_err;
	bool user_memory2;
	uint64_t quirks_sys;
	uint64_t quirks_vm;
	int cap236;
	int cap239;
	/* KVM_MEM_NON_COHERENT_DMA accepted through the v1 / v2 ioctl. */
	bool flag_v1;
	bool flag_v2;
	/* Registered device type number (0: none); is it the VIRTIO device? */
	uint32_t dev_type;
	bool dev_is_virtio;
	/* A second registered type (the seed RFC's 12, or LoongArch's). */
	uint32_t dev_type2;
	bool dev2_is_virtio;
	/*
	 * The v2 series: device (TEST create included) and flag refused where
	 * guest PAT cannot be honored (no self-snoop, no TDP), and on VM types
	 * with private memory (the real create).
	 */
	bool v2;
	/* Contents of kvm_intel's ept / kvm_amd's npt parameters; NULL: no file. */
	const char *ept;
	const char *npt;
	/* A chroot jail (Firecracker's jailer): no /sys and no /proc at all. */
	bool jail;
	/*
	 * Bit 3 of the memslot flags is KVM Userfault's (posted upstream, June
	 * 2025), not KVM_MEM_NON_COHERENT_DMA: a vCPU access to such a slot
	 * exits with KVM_EXIT_MEMORY_FAULT.
	 */
	bool bit3_userfault;
	/* What the VM (not the node) answers for the flag capability; -1: same. */
	int vm_flag_cap;
	/* KVM_CAP_VM_TYPES; VM types other than 0 that KVM_CREATE_VM accepts. */
	uint32_t vm_types;
	/* Appended in 1.3 (zero in the rows above: neither exists there). */
	/* Capability 250: the flag's in the series on Linux 7.2 (v3). */
	int cap250;
	/*
	 * Capability 251 (KVM_CAP_X86_EMULATE_WBINVD), answered by VMs only
	 * (0 for TDX VMs); KVM_ENABLE_CAP of it works until a vCPU exists,
	 * unless wbinvd_other: then 251 is something else and refuses it.
	 */
	int cap251;
	bool wbinvd_other;
};

/* x86 VM types the fake knows. */
#define FAKE_VM_SW_PROTECTED 1 /* private memory */
#define FAKE_VM_TDX	     5 /* private memory, protected state */

/* Built-in personalities, by name; NULL if unknown. */
const struct fake_personality *fake_personality(const char *name);
extern const struct fake_personality fake_personalities[];
extern const int fake_npersonalities;

/* Reset all state and answer as @p from now on. Installs the fake seam. */
void fake_reset(const struct fake_personality *p);
/* Put the real system calls back. */
void fake_uninstall(void);

/*
 * CPUID leaf 1 EDX bit 19 (CLFLUSH), leaf 1's line size and leaf 7 EBX bits
 * 23/24 (CLFLUSHOPT, CLWB) are this CPU's, each hidden where asked (all
 * shown after fake_reset()); the cache engine selects again through them.
 */
void fake_cpuid_cache(bool clflush, bool clflushopt, bool clwb);

/* Fail the @nth seam call from now (1-based) with -@err; 0 disables. */
void fake_fail_nth(int nth, int err);
/* Paths opened or read through the seam since the last reset. */
int fake_paths_opened(void);
/* Scratch VMs (KVM_CREATE_VM on a node fd through the seam) since the last reset. */
int fake_vms_created(void);
/* Seam calls made since the last reset. */
int fake_calls(void);
/* Whether the injected failure was hit. */
bool fake_fail_hit(void);

/* Every memslot asking for KVM_MEM_NON_COHERENT_DMA fails with -@err (0: no more). */
void fake_fail_flag_trials(int err);
/* The next @times deletes of an existing memslot (any VM) fail with -@err. */
void fake_fail_deletes(int times, int err);

/*
 * Fail the @nth allocation from now (1-based: malloc, calloc, realloc and
 * anonymous mappings through the seam) by returning NULL / -ENOMEM; 0
 * disables. Counted apart from the system calls above.
 */
void fake_fail_alloc_nth(int nth);
/* Allocations made through the seam since the process started. */
int fake_allocs(void);
/* Whether the injected allocation failure was hit. */
bool fake_alloc_fail_hit(void);

/* Open fds and mappings the fake currently has outstanding. */
int fake_open_fds(void);
int fake_open_maps(void);

/* Fake fds of other kinds, for bad-input tests. */
int fake_open_system_fd(void);
int fake_open_other_fd(void);
int fake_open_vcpu_fd(int vm_fd);
/* A VM fd as the VMM would hold it (made before any filter: always works). */
int fake_create_vm(void);
int fake_create_vm_type(unsigned long type);
void fake_close(int fd);
/* An ioctl the VMM issues itself, not through the library (not counted). */
int fake_vmm_ioctl(int fd, unsigned long req, unsigned long arg);

/*
 * Opening @path blocks (outside the fake's lock) until fake_unblock_open();
 * fake_open_blocked() says whether a caller is waiting there now.
 */
void fake_block_open(const char *path);
void fake_unblock_open(void);
bool fake_open_blocked(void);

/* Observations on the VM behind @vm_fd. */
struct fake_vm_state {
	int nslots;
	int noncoherent_devices; /* devices with NONCOHERENT_SET */
	int devices;		 /* device fds open */
	uint64_t disabled_quirks;
	/* KVM_CAP_X86_EMULATE_WBINVD enabled. */
	bool wbinvd_emulation;
	/* From here on: counters, not state (a failed call may move them). */
	int v1_calls, v2_calls;
	/* Non-coherent device count leaving or reaching 0: KVM zaps all SPTEs each time. */
	int vm_wide_transitions;
};
void fake_vm_state(int vm_fd, struct fake_vm_state *st);
/* Flags of @slot in @vm_fd, or -1 if absent. */
int64_t fake_slot_flags(int vm_fd, uint32_t slot);

#endif
