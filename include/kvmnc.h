/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkvmnc: non-coherent DMA for KVM guests, one API over every kernel.
 *
 * A device model whose host-side DMA does not snoop CPU caches (a host GPU
 * writing a virtio-gpu blob, say) needs the guest's own memory type (guest
 * PAT, e.g. WC) to reach the hardware. Which kernel mechanism makes KVM honor
 * it depends on the kernel: the KVM VIRTIO device, the
 * KVM_MEM_NON_COHERENT_DMA memslot flag, the KVM_X86_QUIRK_IGNORE_GUEST_PAT
 * quirk, or nothing at all because the hardware already does (AMD NPT).
 * libkvmnc probes which one the running kernel has, picks the narrowest one
 * the caller accepts, and says why when there is none.
 *
 * Every function returns 0 or a positive value on success and a negative
 * errno on failure; kvmnc_strerror() explains the codes in the library's
 * terms. Out-parameters are left untouched on failure. Nothing is printed
 * unless a log callback is installed with kvmnc_set_log().
 *
 * This header deliberately does not include <linux/kvm.h>: the API speaks in
 * plain C types so that it builds against any kernel headers.
 */
#ifndef KVMNC_H
#define KVMNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVMNC_VERSION_MAJOR 1
#define KVMNC_VERSION_MINOR 3
#define KVMNC_VERSION_PATCH 0

#define KVMNC_API __attribute__((visibility("default")))

/*
 * Extensible structs: the first member is `size_t sz`, set by the caller to
 * sizeof() the struct it was compiled with. The library accepts a shorter
 * (older) struct and refuses a longer one only when the bytes it does not
 * know are non-zero (-E2BIG); structs over 4096 bytes are refused (-E2BIG)
 * before anything past sz is read.
 *
 * Declare them zeroed with sz set:
 *   KVMNC_OPTS(kvmnc_open_opts, opts, .scope = KVMNC_SCOPE_VM);   (C)
 *   KVMNC_OPTS(kvmnc_features, f);                                (C99, no warning)
 *   struct kvmnc_features f = KVMNC_OPTS_INIT(kvmnc_features);    (C and C++11)
 * From C++ before C++20 (no designated initializers) use KVMNC_OPTS_INIT()
 * and assign the fields.
 */
#define KVMNC_OPTS_FIRST_(first, ...) first
#define KVMNC_OPTS_REST_(first, ...)  __VA_ARGS__
/* NAME travels in the variable arguments, so that no initializer at all is valid C99. */
#define KVMNC_OPTS(TYPE, ...)                                                                      \
	struct TYPE KVMNC_OPTS_FIRST_(__VA_ARGS__, ) = {.sz = sizeof(struct TYPE),                 \
							KVMNC_OPTS_REST_(__VA_ARGS__, )}

#ifdef __cplusplus
} /* extern "C" */
/* Value-initialized (all zero), then sized: C++11 and later. */
template <typename T> static inline T kvmnc_opts_init_()
{
	T t = T();
	t.sz = sizeof(T);
	return t;
}
#define KVMNC_OPTS_INIT(TYPE) kvmnc_opts_init_<struct TYPE>()
extern "C" {
#else
#define KVMNC_OPTS_INIT(TYPE) ((struct TYPE){.sz = sizeof(struct TYPE)})
#endif

/* Opaque per-VM handle. */
struct kvmnc;

/* Mechanisms, ordered from narrowest to widest scope. */
enum kvmnc_mechanism {
	KVMNC_MECH_NONE = 0,
	/* The hardware already honors guest PAT (AMD NPT): nothing to do. */
	KVMNC_MECH_NATIVE = 1,
	/* KVM_MEM_NON_COHERENT_DMA on the caller's memslots only. */
	KVMNC_MECH_MEMSLOT_FLAG = 2,
	/* KVM_DEV_TYPE_VIRTIO devices: VM-wide while one exists. */
	KVMNC_MECH_VIRTIO_DEVICE = 3,
	/* KVM_X86_QUIRK_IGNORE_GUEST_PAT disabled: VM-wide, for good. */
	KVMNC_MECH_GUEST_PAT_QUIRK = 4,
};

/* How far the caller lets the library widen the VM's memory-type rules. */
enum kvmnc_scope {
	/* Only memory the caller registers as non-coherent (the default). */
	KVMNC_SCOPE_SLOT = 0,
	/* The whole VM, undone when the handle closes. */
	KVMNC_SCOPE_VM = 1,
	/* The whole VM for the rest of its life. */
	KVMNC_SCOPE_VM_IRREVERSIBLE = 2,
};

#define KVMNC_REASON_MAX 256

/* One mechanism's probe answer. */
struct kvmnc_mech_status {
	/* 1 supported, 0 not supported, negative errno: could not tell. */
	int supported;
	/* Why, in one NUL-terminated sentence. */
	char reason[KVMNC_REASON_MAX];
};

/* Host facts as probed on a KVM node (and, for a handle, on its VM). */
struct kvmnc_features {
	size_t sz;
	struct kvmnc_mech_status native;
	struct kvmnc_mech_status memslot_flag;
	struct kvmnc_mech_status virtio_device;
	struct kvmnc_mech_status guest_pat_quirk;
	/* Narrowest supported mechanism (enum kvmnc_mechanism). */
	int recommended;
	/* KVM_GET_API_VERSION; 0 when the answer came from a VM fd alone (no node). */
	int kvm_api_version;
	/* uname -r, NUL-terminated. */
	char kernel_release[65];
	/* CPUID vendor string ("GenuineIntel", ...), empty off x86. */
	char cpu_vendor[13];
	/* CPU self-snoop: 1, 0, or -1 where not applicable. */
	int self_snoop;
	/* EPT/NPT in use by KVM: 1, 0, or negative errno if unknown. */
	int tdp;
	/* KVM_CHECK_EXTENSION(KVM_CAP_DISABLE_QUIRKS2): quirks that can be disabled. */
	uint64_t quirks_mask;
	/*
	 * Capability that advertised the memslot flag, 0 if none: 236
	 * (ChromeOS 5.15-6.6), 239 (ChromeOS 6.12, the series' 6.12 backport)
	 * or 250 (the series on Linux 7.2; since 1.3).
	 */
	uint32_t memslot_flag_cap;
	/*
	 * The KVM device type that proved to be the VIRTIO device: 32 (the
	 * series' 6.12 backport), 17 (the series on Linux 7.2; since 1.3) or
	 * 12 (the RFC as posted); 0 when none did. (1.0 reported the number it
	 * tried, 32, whatever the answer.)
	 */
	uint32_t virtio_device_type;

	/* Since 1.1. */
	/* KVM_CHECK_EXTENSION(KVM_CAP_VM_TYPES): bit n set when VM type n can be created. */
	uint32_t vm_types;
	/* KVMNC_VM_* facts of the VM the answers are for (a handle's); 0 for a scratch VM. */
	uint32_t vm_flags;
	/* Memslot address spaces and user memslot ids per space, as KVM answers; 0 unknown. */
	uint32_t address_spaces;
	uint32_t memslots;
	/* Where the flag and device trials ran (KVMNC_PROBED_*). */
	int probed_on;
	/*
	 * Since 1.2: what memslot_flag's "yes" rests on (KVMNC_FLAG_EVIDENCE_*).
	 * Bit 3 of the memslot flags is claimed by more than one series, so a
	 * kernel that accepts it has not thereby said what it means.
	 */
	uint32_t memslot_flag_evidence;
	/*
	 * Since 1.2: why each answer is what it is, as a code a VMM can branch
	 * on (enum kvmnc_reason; the reason strings stay, for people). One
	 * table, docs/reasons.tsv, lists the codes; kvmnc_reason_name() names
	 * them.
	 */
	uint32_t native_reason;
	uint32_t memslot_flag_reason;
	uint32_t virtio_device_reason;
	uint32_t guest_pat_quirk_reason;

	/*
	 * Since 1.3: can KVM emulate the guest's WBINVD for this VM on request
	 * (KVM_CAP_X86_EMULATE_WBINVD; kvmnc_open() with KVMNC_OPEN_WBINVD)?
	 * Not a mechanism: from the series' v3 on, nothing else makes KVM
	 * emulate WBINVD, so a guest that writes back its caches with WBINVD
	 * for a non-snooping device needs it. The answer of the VM itself for
	 * a handle (a capability asked of the VM fd), of a scratch VM for
	 * kvmnc_probe(), where KVM_ENABLE_CAP is tried too.
	 */
	struct kvmnc_mech_status wbinvd_emulation;
	/* Why (enum kvmnc_reason). */
	uint32_t wbinvd_emulation_reason;
	/* The capability that answered (251), 0 when none did. */
	uint32_t wbinvd_emulation_cap;
};

/* kvmnc_features.*_reason (docs/reasons.tsv is the table; the values never change). */
enum kvmnc_reason {
	/* Not filled in (a struct from before 1.2). */
	KVMNC_REASON_UNSET = 0,
	/* Supported. */
	KVMNC_REASON_SUPPORTED = 1,
	/* Could not tell: supported is the negative errno that stopped the probe. */
	KVMNC_REASON_COULD_NOT_TELL = 2,
	/* This kernel does not have it (refused, not registered, too old). */
	KVMNC_REASON_KERNEL_LACKS = 3,
	/* Not x86: the quirk does not exist, native has not been checked. */
	KVMNC_REASON_ARCH = 4,
	/* native on Intel VMX: KVM ignores guest PAT unless a mechanism says otherwise. */
	KVMNC_REASON_IGNORES_GUEST_PAT = 5,
	/* An x86 vendor KVM's memory-type handling is not known for. */
	KVMNC_REASON_UNKNOWN_VENDOR = 6,
	/* No EPT/NPT in use (disabled, or KVM is not kvm_intel/kvm_amd): shadow paging. */
	KVMNC_REASON_NO_TDP = 7,
	/* An Intel CPU without self-snoop: honoring guest PAT would be unsafe. */
	KVMNC_REASON_NO_SELF_SNOOP = 8,
	/* Not needed: guest PAT is honored natively (AMD NPT, a TDX VM). */
	KVMNC_REASON_NATIVE_ALREADY = 9,
	/* The kernel takes the request, but it means something else here (memslot bit 3). */
	KVMNC_REASON_OTHER_MEANING = 10,
	/* The host has it, this VM's type refuses it. */
	KVMNC_REASON_VM_TYPE = 11,
	/*
	 * Since 1.3: a VM-wide mechanism the host has, ruled out for this VM
	 * by KVMNC_OPEN_UC_VRAM_DISPLAY (a handle's answer only).
	 */
	KVMNC_REASON_UC_VRAM_DISPLAY = 12,
};

/* "supported", "could_not_tell", ... as docs/reasons.tsv names them; NULL if unknown (since 1.2).
 */
KVMNC_API const char *kvmnc_reason_name(int reason);

/* kvmnc_features.memslot_flag_evidence */
enum kvmnc_flag_evidence {
	/* The flag is not supported, or could not be told. */
	KVMNC_FLAG_EVIDENCE_NONE = 0,
	/*
	 * Accepted, and advertised by a capability whose number means the flag
	 * on this kernel (239 or 250 on x86; 236 only where
	 * KVM_SET_USER_MEMORY_REGION2 does not exist, since upstream 236 is
	 * KVM_CAP_PRE_FAULT_MEMORY).
	 */
	KVMNC_FLAG_EVIDENCE_CAPABILITY = 1,
	/*
	 * Accepted without such a capability, and a guest access to the
	 * flagged trial slot completed on a scratch VM (no KVM_EXIT_MEMORY_FAULT,
	 * as a KVM Userfault slot would give).
	 */
	KVMNC_FLAG_EVIDENCE_ACCESS = 2,
};

/* kvmnc_features.vm_flags */
/* The VM type has private (guest_memfd) memory: KVM_CAP_MEMORY_ATTRIBUTES lists PRIVATE. */
#define KVMNC_VM_PRIVATE_MEMORY (1u << 0)
/* The VM type has protected state (no read-only memslots): TDX on Intel, SEV-ES/SNP on AMD. */
#define KVMNC_VM_PROTECTED_STATE (1u << 1)

/* kvmnc_features.probed_on */
enum kvmnc_probed_on {
	/* No trial could run (the flag and device answers are "could not tell"). */
	KVMNC_PROBED_NOWHERE = 0,
	/* A scratch VM the library created and closed. */
	KVMNC_PROBED_SCRATCH_VM = 1,
	/* The caller's VM (no scratch VM could be made): a trial memslot on a free
	 * slot id, deleted again, and a device created and closed without being set. */
	KVMNC_PROBED_CALLER_VM = 2,
};

/*
 * Probe the KVM node @dev_path (NULL: "/dev/kvm"). Host-wide facts are cached
 * per process and per path once they are definitive; a cached call makes no
 * system call and never waits for another thread's probe. The first call
 * creates one scratch VM to confirm by trial what capability numbers only
 * hint at. Where no scratch VM can be made for a reason that will not go away
 * (a seccomp filter, a kernel that needs a VM type), the answer says "could
 * not tell" for the flag and the device, is cached as such, and the first
 * kvmnc_open() completes it from the caller's VM (then cached for the path).
 * Thread-safe.
 *
 * Returns 0, or a negative errno when the node cannot be used at all:
 * -ENOENT no such node (also a trailing slash, a symlink loop, a node without
 * its driver); -EACCES/-EPERM no permission; -ENOTTY not a KVM node (a
 * directory, any other file or device); -EINVAL a path longer than PATH_MAX
 * or a component longer than NAME_MAX; -EPROTO a KVM API version other than
 * 12; resource errors (-EMFILE, -ENOMEM) as open(2) gives them.
 */
KVMNC_API int kvmnc_probe(const char *dev_path, struct kvmnc_features *out);

struct kvmnc_open_opts {
	size_t sz;
	/* enum kvmnc_scope; 0 is KVMNC_SCOPE_SLOT. */
	int scope;
	/* 0 (KVMNC_MECH_NONE): choose automatically; otherwise use exactly this
	 * mechanism or fail with -EOPNOTSUPP. */
	int mechanism;
	/* The KVM node the VM came from; NULL: "/dev/kvm". With KVMNC_OPEN_KVM_FD
	 * it only names the node for the probe cache. */
	const char *dev_path;

	/* Since 1.1. */
	/* KVMNC_OPEN_* */
	uint32_t flags;
	/* With KVMNC_OPEN_KVM_FD: the caller's fd of the KVM node (kept open by the
	 * caller; the library only issues ioctls on it during kvmnc_open()). */
	int kvm_fd;
};

/*
 * The caller will call kvmnc_device_enable(). Where the device mechanism is
 * the guest-PAT quirk, it is disabled in kvmnc_open(), before memslots and
 * vCPUs exist; without this flag kvmnc_device_enable() on such a handle
 * gives -EBUSY, because KVM does not recompute mappings that already exist.
 */
#define KVMNC_OPEN_DEVICES (1u << 0)
/* opts.kvm_fd is the KVM node: the library opens no path (sandboxed VMMs). */
#define KVMNC_OPEN_KVM_FD (1u << 1)
/*
 * Since 1.3: turn on guest WBINVD emulation for the VM
 * (KVM_CAP_X86_EMULATE_WBINVD), for guests that write back their caches
 * with WBINVD before a non-snooping device reads. From the series' v3 on,
 * KVM emulates WBINVD only on this request: not because of the memslot
 * flag or the VIRTIO device. It is for the VM's life and must happen
 * before any vCPU exists: open the handle right after KVM_CREATE_VM.
 *
 * The cost falls on others too: each WBINVD of the guest, which any guest
 * kernel may execute whenever it likes, becomes a write-back and
 * invalidation of the whole cache hierarchy of every host CPU its vCPUs
 * ran on (IPIs to them), evicting the working sets of the other tenants
 * of those CPUs and stalling them while the caches are written back. Ask
 * for it only for a VM whose guest needs it, on hosts where that is
 * acceptable. Without this flag the library never turns it on.
 *
 * kvmnc_open() fails with -EOPNOTSUPP (nothing done) where the kernel
 * lacks it (kvmnc_features.wbinvd_emulation says why), and with -EBUSY
 * where KVM refuses it because the VM has vCPUs already.
 */
#define KVMNC_OPEN_WBINVD (1u << 2)
/*
 * Since 1.3: the machine has a display device whose guest driver maps its
 * VRAM uncached (QEMU's bochs-display or std VGA with Linux's bochs-drm).
 * Honoring guest PAT for all guest memory makes such a guest's display
 * crawl (KVM's "always honor guest PAT" was reverted over it), so the
 * library follows QEMU's rule "i386/kvm: Honor guest PAT on x86, absent
 * Bochs display": the guest-PAT quirk stays on (guest PAT ignored) when
 * such a display exists. With this flag kvmnc_open() takes no mechanism
 * that changes the memory type of all guest memory: not the guest-PAT
 * quirk, not the VIRTIO device (VM-wide). Automatic choice falls back to
 * the memslot flag (one slot: the GPU blob honors guest PAT while RAM and
 * VRAM stay WB with IPAT) or to native or none; kvmnc_get_features() on
 * the handle reports the VM-wide mechanisms as unsupported with
 * KVMNC_REASON_UC_VRAM_DISPLAY, and a changed choice is logged. Forcing a
 * VM-wide mechanism in opts.mechanism with this flag is a contradiction:
 * -EINVAL before anything is probed or done. A scope of KVMNC_SCOPE_VM or
 * wider only allows, so it is no error: nothing VM-wide is taken.
 */
#define KVMNC_OPEN_UC_VRAM_DISPLAY (1u << 3)

/*
 * Open a handle on the VM @vm_fd. The caller keeps ownership of @vm_fd and
 * must keep it open until kvmnc_close(). Open the handle right after
 * KVM_CREATE_VM: when the guest-PAT quirk is the mechanism chosen, it is
 * disabled here, before any memslot or vCPU exists (the kernel does not
 * recompute mappings that already exist).
 *
 * The host facts come from kvmnc_probe(); what differs per VM is asked of
 * @vm_fd (quirk mask, VM type, address spaces, memslot ids). When the probe
 * could not try the flag and the device (no scratch VM: a seccomp filter
 * denies KVM_CREATE_VM), or when the node itself cannot be opened by an
 * unprivileged VMM (dev_path NULL; -EACCES, -EPERM or -ENOENT), they are
 * tried on @vm_fd: a trial memslot on the highest user slot id at guest
 * address 64 GiB - 4 KiB, deleted again, and a device created and closed
 * without KVM_SET_DEVICE_ATTR. Open right after KVM_CREATE_VM so that the
 * trial meets no memslot of the VMM's.
 *
 * Errors: -EINVAL bad arguments (unknown flags too; a VM-wide mechanism
 * forced with KVMNC_OPEN_UC_VRAM_DISPLAY), -EBADF @vm_fd (or kvm_fd) is
 * not open, -ENOTTY @vm_fd is not a KVM VM (or kvm_fd not a KVM node),
 * -EOPNOTSUPP the forced mechanism is unavailable (or, since 1.3, WBINVD
 * emulation with KVMNC_OPEN_WBINVD), -E2BIG unknown non-zero option bytes
 * or sz > 4096, or what kvmnc_probe() returned.
 * Since 1.2: -EISCONN the VM already has an open handle in this process
 * (one VM, one handle: a second kept its own devices and answers), and
 * -ENOTRECOVERABLE a trial memslot could not be deleted from @vm_fd (it
 * stays, with its page; discard the VM). Since 1.3: -EBUSY KVM refused
 * WBINVD emulation because the VM has vCPUs (KVMNC_OPEN_WBINVD; nothing
 * done), and -ENOTRECOVERABLE also when WBINVD emulation was turned on
 * and disabling the guest-PAT quirk then failed (emulation stays on: it
 * cannot be undone; discard the VM). Of the two irreversible steps the
 * one KVM can refuse goes first, so that a refusal leaves nothing behind.
 */
KVMNC_API int kvmnc_open(int vm_fd, const struct kvmnc_open_opts *opts, struct kvmnc **out);

/*
 * Close a handle: closes every device fd the library created for the VM and
 * forgets the handle. What stays in the VM depends on the mechanism:
 *  - memslot flag: slots keep KVM_MEM_NON_COHERENT_DMA (it belongs to the
 *    slot, set when KVM created it);
 *  - VIRTIO device: the devices close, so KVM stops honoring guest PAT for the
 *    handle's regions and devices (a warning is logged when regions remain);
 *  - guest-PAT quirk: stays disabled for the VM's life;
 *  - native: nothing changes.
 * Keep the handle open for as long as the VM runs non-coherent DMA. NULL is
 * accepted (returns 0); a handle that is not open gives -EBADF, as long as
 * its memory has not gone to a newer handle (treat a closed handle like a
 * closed fd number). In a child after fork() it closes the child's copies of
 * the device fds and nothing else, even if another thread of the parent was
 * inside the library at fork().
 */
KVMNC_API int kvmnc_close(struct kvmnc *h);

/* What a handle chose and holds. */
struct kvmnc_handle_info {
	size_t sz;
	/* Mechanism non-coherent regions use (enum kvmnc_mechanism). */
	int region_mechanism;
	/* Mechanism kvmnc_device_enable() uses (enum kvmnc_mechanism). */
	int device_mechanism;
	/* The scope the handle was opened with. */
	int scope;
	/* 1 once the library disabled KVM_X86_QUIRK_IGNORE_GUEST_PAT on this VM. */
	int quirk_disabled;
	uint32_t noncoherent_regions;
	uint32_t enabled_devices;
	/* KVM_CAP_DISABLE_QUIRKS2 as answered by this VM. */
	uint64_t vm_quirks_mask;

	/* Since 1.3. */
	/* 1 once the library turned on guest WBINVD emulation (KVMNC_OPEN_WBINVD). */
	int wbinvd_emulation;
	/* The KVMNC_OPEN_* flags the handle was opened with. */
	uint32_t open_flags;
};

KVMNC_API int kvmnc_get_info(struct kvmnc *h, struct kvmnc_handle_info *info);

/* The host facts as they apply to this handle's VM. */
KVMNC_API int kvmnc_get_features(struct kvmnc *h, struct kvmnc_features *out);

/* KVM memslot flags, same values as <linux/kvm.h>. */
#define KVMNC_MEM_LOG_DIRTY_PAGES (1u << 0)
#define KVMNC_MEM_READONLY	  (1u << 1)
#define KVMNC_MEM_GUEST_MEMFD	  (1u << 2)
/* KVM_MEM_NON_COHERENT_DMA, as the library adds it (since 1.1; see kvmnc_region_plan). */
#define KVMNC_MEM_NON_COHERENT_DMA (1u << 3)

/* kvmnc_region.kvmnc_flags */
#define KVMNC_REGION_NONCOHERENT (1u << 0)

/* A memslot, with the semantics of struct kvm_userspace_memory_region2. */
struct kvmnc_region {
	size_t sz;
	/* Address space in bits 16-31, slot id in bits 0-15, as KVM. */
	uint32_t slot;
	/* KVMNC_MEM_* flags; the non-coherent flag goes in kvmnc_flags. */
	uint32_t flags;
	uint64_t guest_phys_addr;
	/* 0 deletes the slot. */
	uint64_t memory_size;
	uint64_t userspace_addr;
	/* With KVMNC_MEM_GUEST_MEMFD only. */
	uint64_t guest_memfd_offset;
	int32_t guest_memfd;
	/* KVMNC_REGION_* */
	uint32_t kvmnc_flags;
};

/*
 * Create, move or delete a memslot. With KVMNC_REGION_NONCOHERENT, guest
 * memory types are honored for it by the handle's region mechanism: the
 * memslot flag, or a VM-wide mechanism the scope allows; -EOPNOTSUPP when
 * there is none. Plain regions pass through to KVM unchanged.
 *
 * KVM's answer is the truth: the library tracks only non-coherent slots and
 * updates its view from what KVM did. With the memslot flag KVM refuses to
 * change whether an existing slot is non-coherent (-EINVAL); delete and
 * re-create it instead. A slot the VMM deleted with its own ioctl can be
 * re-created either way (tell the library about such a delete with
 * kvmnc_region_removed() if the slot is not re-created). The address space must be below
 * what the VM supports (KVM_CAP_MULTI_ADDRESS_SPACE: 2 on x86, 1 for VM
 * types with private memory) and the slot id below KVM_CAP_NR_MEMSLOTS;
 * -EINVAL otherwise, before any kernel call. A failed call changes nothing.
 */
KVMNC_API int kvmnc_set_region(struct kvmnc *h, const struct kvmnc_region *r);

/*
 * For VMMs that issue the memslot ioctls themselves (QEMU's
 * kvm_set_user_memory_region(), crosvm's set_user_memory_region()): the
 * library says what to do, the VMM does it, then reports what KVM said.
 *
 *   struct kvmnc_region r = {.sz = sizeof(r), .slot = ..., ...,
 *                            .kvmnc_flags = KVMNC_REGION_NONCOHERENT};
 *   struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);
 *   err = kvmnc_region_prepare(h, &r, &plan);     // before the ioctl
 *   mem.flags = plan.flags;                        // the VMM's own struct
 *   ret = ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &mem);
 *   kvmnc_region_complete(h, r.slot, ret < 0 ? -errno : 0);
 *   ...
 *   ioctl(vm, ..., memory_size 0);                 // later, the delete
 *   kvmnc_region_removed(h, slot);
 */
struct kvmnc_region_plan {
	size_t sz;
	/* The memslot flags to pass to KVM: the region's, plus add_flags. */
	uint32_t flags;
	/* What the library added: KVMNC_MEM_NON_COHERENT_DMA with the memslot
	 * flag, 0 otherwise. */
	uint32_t add_flags;
	/* The mechanism that covers the region (enum kvmnc_mechanism); for
	 * a plain region KVMNC_MECH_NONE. */
	int mechanism;
	/* 1 when kvmnc_region_prepare() took a VM-wide step for this region
	 * (created the VIRTIO device that covers regions); a failure reported
	 * to kvmnc_region_complete() undoes it. */
	int vm_wide_step;
};

/*
 * Plan a memslot change the caller will make itself: validate @r as
 * kvmnc_set_region() does, decide the flags, and take the VM-wide step
 * first if the mechanism needs one (it must exist before KVM maps the
 * memory). A region asking for non-coherence may say so in kvmnc_flags or
 * by putting KVMNC_MEM_NON_COHERENT_DMA in flags (as crosvm does); plan->flags
 * then has the bit only where the memslot flag is the mechanism. Plain
 * regions and deletes may be planned too (plan->flags is r->flags).
 *
 * The plan waits for kvmnc_region_complete() with the same slot; until then
 * a second plan for it, kvmnc_set_region() and kvmnc_region_removed() on it
 * give -EALREADY. Also -EOPNOTSUPP (no mechanism for a
 * non-coherent region), -EINVAL, -E2BIG, -ENOMEM, -EBADF. On failure nothing
 * is planned or changed.
 */
KVMNC_API int kvmnc_region_prepare(struct kvmnc *h, const struct kvmnc_region *r,
				   struct kvmnc_region_plan *plan);

/*
 * Report what KVM answered to the planned change of @slot: 0, or the
 * negative errno of the ioctl. On success the library's view follows (a
 * non-coherent region is registered and its memory flushed by the copy
 * helpers; a plain one or a delete drops what was registered); on failure
 * the plan is dropped and its VM-wide step undone (the quirk excepted, as
 * always), leaving no state behind. -ENOENT when no plan waits for @slot,
 * -EINVAL for a positive @result.
 */
KVMNC_API int kvmnc_region_complete(struct kvmnc *h, uint32_t slot, int result);

/*
 * The caller deleted @slot (or learnt that KVM no longer has it): forget it.
 * -ENOENT when the library knows no memslot at @slot (it knows the
 * non-coherent ones and, on a handle whose devices have a mechanism, the
 * plain ones that went through it: since 1.1's migration API), -EALREADY
 * when a plan for it waits for its outcome.
 */
KVMNC_API int kvmnc_region_removed(struct kvmnc *h, uint32_t slot);

/*
 * The VMM will not issue the ioctl it planned for @slot (since 1.2): the
 * plan is dropped and its VM-wide step undone, as a failed outcome would.
 * -ENOENT when no plan waits for @slot.
 */
KVMNC_API int kvmnc_region_abort(struct kvmnc *h, uint32_t slot);

/*
 * The VMM's memslots are exactly the @n slot ids at @slots (address space
 * << 16 | id), for a VMM that may have missed kvmnc_region_removed() calls
 * (since 1.2): every memslot the library knows that is not listed and has
 * no plan waiting is forgotten, as kvmnc_region_removed() would. KVM has
 * no call that lists memslots without changing one, so the list comes from
 * the VMM's own table. Returns how many were forgotten; -EINVAL for a NULL
 * @slots with a non-zero @n.
 */
KVMNC_API int kvmnc_region_resync(struct kvmnc *h, const uint32_t *slots, size_t n);

/*
 * Declare that device model @device_id (any number the caller chooses, such
 * as a PCI BDF) does non-coherent DMA to guest memory anywhere. With the
 * VIRTIO device mechanism this creates its KVM device and sets
 * KVM_DEV_VIRTIO_NONCOHERENT_SET; with the quirk or native mechanism it is
 * recorded. Enabling an enabled device returns 0 and changes nothing.
 * -EOPNOTSUPP when the scope allows no VM-wide mechanism; -EBUSY when the
 * mechanism is the guest-PAT quirk and the handle was opened without
 * KVMNC_OPEN_DEVICES (too late: existing mappings would stay WB).
 */
KVMNC_API int kvmnc_device_enable(struct kvmnc *h, uint32_t device_id);

/* Undo kvmnc_device_enable(); -ENOENT if @device_id is not enabled. */
KVMNC_API int kvmnc_device_disable(struct kvmnc *h, uint32_t device_id);

/*
 * Keep the VM-wide mechanism for regions in force from now until
 * kvmnc_vm_wide_disarm() or kvmnc_close(), without declaring any memory
 * non-coherent (since 1.2). Each time a VM-wide mechanism comes into force
 * or goes, KVM zaps every stage-2 mapping of the VM; without arming, the
 * VIRTIO device exists only while a non-coherent region does, so a VMM
 * that maps and unmaps a blob pays two such zaps per blob. Armed, there is
 * one when arming and one when disarming, and only the regions declared
 * non-coherent count as such (kvmnc_is_noncoherent(), the ranges, the copy
 * helpers), unlike kvmnc_device_enable(), which declares all guest memory.
 * Arming an armed handle returns 0 and changes nothing. With the memslot
 * flag or native there is nothing VM-wide to keep, and with the guest-PAT
 * quirk it is in force from kvmnc_open(): 0 and nothing done.
 * -EOPNOTSUPP when the handle has no mechanism for regions.
 */
KVMNC_API int kvmnc_vm_wide_arm(struct kvmnc *h);

/*
 * End kvmnc_vm_wide_arm(): the VM-wide mechanism stays while non-coherent
 * regions or plans for them exist, and goes with the last. 0 also when the
 * handle is not armed (since 1.2).
 */
KVMNC_API int kvmnc_vm_wide_disarm(struct kvmnc *h);

/*
 * Live migration.
 *
 * What is non-coherent is what the VMM declared: a registered non-coherent
 * region (kvmnc_set_region(), or the VMM-owned path from
 * kvmnc_region_prepare() on: a planned region counts), and, while a device
 * model is enabled (kvmnc_device_enable()), every memslot the library knows
 * (plain ones too, as they went through kvmnc_set_region() or the
 * VMM-owned path: a VMM that enables devices routes every memslot through
 * the library), since the device may DMA anywhere in the guest. When a
 * device is enabled and the library knows no plain memslot (the VMM issues
 * those ioctls itself and never told the library), it cannot tell guest
 * memory from other memory, and every address counts (KVMNC_RANGE_ANY).
 * A VM-wide mechanism in force by itself (the quirk disabled, no region,
 * no device) makes nothing non-coherent: honoring guest PAT without a
 * non-snooping device leaves the caches coherent.
 */

/*
 * Returns 1 when the VM holds non-coherent memory (see above), 0 when not,
 * negative errno on error. A VMM that does not use the helpers below should
 * block migration while this is 1.
 */
KVMNC_API int kvmnc_is_noncoherent(struct kvmnc *h);

/*
 * Copy @len bytes of guest memory at @src (host address) to @dst so that
 * what a device wrote without snooping is seen. The parts of
 * [@src, @src + @len) that are non-coherent have their cache lines
 * invalidated (CLFLUSHOPT, or CLFLUSH, chosen from CPUID) with an MFENCE
 * before any is read; the rest is copied as memcpy() would. @dst is plain
 * memory: from 1 MiB of one non-coherent part on it is written with
 * non-temporal stores and an SFENCE, as a large memcpy() does.
 *
 * Ordering: on return @dst holds what memory held when the call began, for
 * every device write that had reached memory by then; stop the device
 * model (or wait for its writes to complete) first. Stores to @dst are
 * complete before any later store of the calling thread.
 *
 * Only bytes of @dst are written, and only memory inside the two ranges
 * is touched: the call faults where memcpy() would. The lookup takes no
 * lock (a per-thread hint makes consecutive pages of one region cost one
 * compare). -EINVAL for a NULL buffer with a length, a range that wraps or
 * overlapping buffers; -EOPNOTSUPP (nothing copied) when part of the range
 * is non-coherent and the CPU has no cache-line flush (anything but x86 in
 * this release); -EBADF for a handle that is not open.
 */
KVMNC_API int kvmnc_copy_from_guest(struct kvmnc *h, void *dst, const void *src, size_t len);

/*
 * Copy @src into guest memory at @dst (host address) so that a device
 * reading without snooping sees it (migration destination). The
 * non-coherent parts of [@dst, @dst + @len) are written with non-temporal
 * stores (whole 64-byte blocks; the partial blocks at the ends are written
 * and then written back with CLWB, CLFLUSHOPT or CLFLUSH), then an SFENCE:
 * on return the data is in memory, and any later store of the calling
 * thread (a doorbell, a wake-up) becomes visible only after it. The rest is
 * copied as memcpy() would. Errors as kvmnc_copy_from_guest().
 */
KVMNC_API int kvmnc_copy_to_guest(struct kvmnc *h, void *dst, const void *src, size_t len);

/*
 * Write back and invalidate the cache lines of the non-coherent parts of
 * [@addr, @addr + @len), then MFENCE; nothing for the rest. For memory the
 * kernel filled, such as a post-copy page placed with UFFDIO_COPY. The
 * instructions act like loads: the range must be mapped. A @len of 0
 * flushes nothing and only checks the handle. Errors as
 * kvmnc_copy_from_guest().
 *
 * Post-copy, on the destination, for each page that arrives:
 *   1. UFFDIO_COPY with UFFDIO_COPY_MODE_DONTWAKE: the page is filled and
 *      mapped, and the vCPU waiting for it stays asleep;
 *   2. kvmnc_flush() on the page: its lines reach memory before anyone
 *      uses it;
 *   3. UFFDIO_WAKE on the page.
 * A flush after a waking UFFDIO_COPY races the vCPU: the guest may already
 * write the page through its own (uncached or write-combining) mapping, and
 * writing back the kernel's stale cached lines afterwards would overwrite
 * what it wrote. A flush before UFFDIO_COPY faults on the missing page.
 */
KVMNC_API int kvmnc_flush(struct kvmnc *h, const void *addr, size_t len);

/* Since 1.1. */

/*
 * Per-range answers: 1 when any byte of [@hva, @hva + @len) (host
 * addresses) is non-coherent guest memory, 0 when none is (also for @len
 * 0), negative errno: -EINVAL for a NULL @hva with a length or a range
 * that wraps, -EBADF. Lock-free.
 */
KVMNC_API int kvmnc_hva_is_noncoherent(struct kvmnc *h, const void *hva, size_t len);

/*
 * The same for guest physical addresses [@gpa, @gpa + @len) in address
 * space @as_id (as in bits 16-31 of a memslot's slot: 0, or 1 for SMM on
 * x86). -EINVAL for an address space the VM does not have or a range that
 * wraps.
 */
KVMNC_API int kvmnc_gpa_is_noncoherent(struct kvmnc *h, uint32_t as_id, uint64_t gpa, uint64_t len);

/* kvmnc_range.why */
/* The VMM registered the memslot as non-coherent. */
#define KVMNC_RANGE_REGION (1u << 0)
/* ... through kvmnc_region_prepare(); kvmnc_region_complete() has not been called yet. */
#define KVMNC_RANGE_PLANNED (1u << 1)
/* A device model is enabled: it may DMA to any guest memory, this memslot included. */
#define KVMNC_RANGE_DEVICE (1u << 2)
/*
 * A device model is enabled and the library knows no guest memory (or not
 * all of it): every address counts. The range is slot KVMNC_RANGE_ANY_SLOT,
 * addresses 0, size UINT64_MAX; it is the only one.
 */
#define KVMNC_RANGE_ANY	     (1u << 3)
#define KVMNC_RANGE_ANY_SLOT 0xffffffffu

/*
 * One non-coherent memslot. An array element, laid out with the stride the
 * caller asked for (kvmnc_snapshot_take()); fields may be added at the end.
 */
struct kvmnc_range {
	/* As in struct kvmnc_region: address space in bits 16-31, id in 0-15. */
	uint32_t slot;
	/* KVMNC_RANGE_* */
	uint32_t why;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	/*
	 * How KVM honors guest PAT there (enum kvmnc_mechanism): the memslot
	 * flag, the VIRTIO device, the guest-PAT quirk, native. The region
	 * mechanism for regions, the device mechanism for the rest.
	 */
	int32_t mechanism;
};

/* Everything a migration pass needs, taken once; the library never changes it. */
struct kvmnc_snapshot {
	/* sizeof the library's struct: fields past what a caller knows are there. */
	size_t sz;
	/* Compare with kvmnc_snapshot_stale(): new with every change of the state. */
	uint64_t generation;
	/* count ranges, sorted by userspace_addr, each range_sz bytes apart. */
	const struct kvmnc_range *ranges;
	size_t count;
	size_t range_sz;
	uint32_t enabled_devices;
	/* Non-coherent regions KVM holds, and those planned (KVMNC_RANGE_PLANNED). */
	uint32_t noncoherent_regions;
	uint32_t planned_regions;
	int region_mechanism;
	int device_mechanism;
	/*
	 * 0 when this CPU has what the copy helpers need, else the error they
	 * return for non-coherent memory (-EOPNOTSUPP: not x86, no CLFLUSH).
	 */
	int cache_maintenance;
	/* "clflushopt", "clflush", "clwb" or "none": read side / write side's partial lines. */
	const char *invalidate_insn;
	const char *writeback_insn;
};

/*
 * A snapshot of the non-coherent state of @h: every non-coherent memslot
 * with its slot, GPA, host address, size and why, for a migration pass to
 * walk without further library calls. @range_sz is the caller's
 * sizeof(struct kvmnc_range); ranges[] uses it as its stride (a larger one
 * from a newer header is zero-filled past what the library knows). Free it
 * with kvmnc_snapshot_free(). -EINVAL (NULL @out, @range_sz below the 1.1
 * struct or above 4096), -ENOMEM, -EBADF.
 */
KVMNC_API int kvmnc_snapshot_take(struct kvmnc *h, size_t range_sz, struct kvmnc_snapshot **out);

/* 1 when the state of @h changed since @snap was taken, 0 when not; -EINVAL, -EBADF. */
KVMNC_API int kvmnc_snapshot_stale(struct kvmnc *h, const struct kvmnc_snapshot *snap);

/* NULL is accepted. */
KVMNC_API void kvmnc_snapshot_free(struct kvmnc_snapshot *snap);

/*
 * Range @i of @snap (since 1.2): ranges[] is laid out with the stride the
 * snapshot was taken with (range_sz), which indexing a
 * const struct kvmnc_range * gets wrong whenever range_sz differs from the
 * caller's sizeof. NULL for a NULL @snap or @i >= count.
 */
KVMNC_API const struct kvmnc_range *kvmnc_snapshot_range(const struct kvmnc_snapshot *snap,
							 size_t i);

/* How the VMM migrates guest memory. */
enum kvmnc_migration_mode {
	/* With its own copies (plain loads and stores, zero-copy sends): no helper. */
	KVMNC_MIGRATION_NONE = 0,
	/* Pre-copy: copy_from_guest on the source, copy_to_guest on the destination. */
	KVMNC_MIGRATION_PRECOPY = 1,
	/* Post-copy: the destination also fills pages on fault (UFFDIO_COPY, kvmnc_flush). */
	KVMNC_MIGRATION_POSTCOPY = 2,
};

/* kvmnc_migration_advice.action, and kvmnc_migration_advise()'s return value */
enum kvmnc_migration_action {
	/* Nothing is non-coherent: migrate as usual. */
	KVMNC_MIGRATE_PLAIN = 0,
	/* Copy the snapshot's ranges with the helpers; the rest as usual. */
	KVMNC_MIGRATE_COHERENT = 1,
	/* Block migration (reason says why). */
	KVMNC_MIGRATE_BLOCK = 2,
};

/* kvmnc_migration_advice.flags */
/*
 * The ranges are written by devices, which KVM's dirty log does not see:
 * unless the VMM tracks those writes itself, copy them again after the
 * device models have stopped.
 */
#define KVMNC_ADVICE_RESEND (1u << 0)
/* Post-copy: fill their pages in the order kvmnc_flush() gives (DONTWAKE, flush, WAKE). */
#define KVMNC_ADVICE_POSTCOPY_ORDER (1u << 1)

struct kvmnc_migration_advice {
	size_t sz;
	/* enum kvmnc_migration_action */
	int action;
	/* KVMNC_ADVICE_* */
	uint32_t flags;
	/* Why, in one NUL-terminated sentence (for a migration blocker's message). */
	char reason[KVMNC_REASON_MAX];
};

/*
 * The policy: given a snapshot and how the VMM migrates, block or say which
 * ranges need the helpers (those of @snap, all of them). Blocks when memory
 * is non-coherent and @mode is KVMNC_MIGRATION_NONE, when the CPU cannot
 * flush (cache_maintenance), and for post-copy while a device model is
 * enabled (it may DMA to pages that have not arrived, and DMA raises no
 * userfault). Returns the action (>= 0) and fills @out if not NULL;
 * -EINVAL for a NULL @snap or an unknown @mode, -E2BIG / -EINVAL for
 * @out's sz as for every out struct.
 */
KVMNC_API int kvmnc_migration_advise(const struct kvmnc_snapshot *snap, int mode,
				     struct kvmnc_migration_advice *out);

enum kvmnc_log_level {
	KVMNC_LOG_ERROR = 0,
	KVMNC_LOG_WARN = 1,
	KVMNC_LOG_INFO = 2,
	KVMNC_LOG_DEBUG = 3,
};

typedef void (*kvmnc_log_fn)(int level, const char *msg, void *ctx);

/*
 * Install a process-wide log callback (NULL removes it) receiving messages
 * up to @max_level. The library prints nothing by itself.
 */
KVMNC_API void kvmnc_set_log(kvmnc_log_fn fn, int max_level, void *ctx);

/*
 * Install a log callback for handle @h (since 1.2; NULL @fn: back to the
 * process-wide one): the messages of calls on @h, up to @max_level, go to
 * it instead of the process-wide callback, so that a VMM can route them
 * to the VM they concern. What kvmnc_open() says before it returns, and
 * messages that concern no handle (the probe), go to the process-wide
 * callback. The callback never runs with a library lock held. -EBADF.
 */
KVMNC_API int kvmnc_set_handle_log(struct kvmnc *h, kvmnc_log_fn fn, int max_level, void *ctx);

/*
 * Text for a negative errno returned by this library; never NULL. Where one
 * errno has several meanings (-ENOENT, -EBADF), and @err is the last error
 * the library returned to this thread, the text names the one that
 * happened (since 1.2).
 */
KVMNC_API const char *kvmnc_strerror(int err);

/* "native", "memslot_flag", "virtio_device", "guest_pat_quirk", "none"; NULL if unknown. */
KVMNC_API const char *kvmnc_mechanism_name(int mechanism);

/* The library's version at run time, e.g. "1.1.0". */
KVMNC_API const char *kvmnc_version(void);
KVMNC_API unsigned int kvmnc_version_major(void);
KVMNC_API unsigned int kvmnc_version_minor(void);
KVMNC_API unsigned int kvmnc_version_patch(void);

#ifdef __cplusplus
}
#endif

#endif /* KVMNC_H */
