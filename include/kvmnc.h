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
#define KVMNC_VERSION_MINOR 0
#define KVMNC_VERSION_PATCH 0

#define KVMNC_API __attribute__((visibility("default")))

/*
 * Extensible structs: the first member is `size_t sz`, set by the caller to
 * sizeof() the struct it was compiled with. The library accepts a shorter
 * (older) struct and refuses a longer one only when the bytes it does not
 * know are non-zero (-E2BIG). Declare them zeroed with KVMNC_OPTS(), e.g.
 *   KVMNC_OPTS(kvmnc_open_opts, opts, .scope = KVMNC_SCOPE_VM);
 * From C++, value-initialize the struct ({}) and set sz.
 */
#define KVMNC_OPTS(TYPE, NAME, ...) struct TYPE NAME = {.sz = sizeof(struct TYPE), __VA_ARGS__}

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
	/* KVM_GET_API_VERSION. */
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
	/* Capability that advertised the memslot flag (236 or 239), 0 if none. */
	uint32_t memslot_flag_cap;
	/* The KVM device type number tried for the VIRTIO device. */
	uint32_t virtio_device_type;
};

/*
 * Probe the KVM node @dev_path (NULL: "/dev/kvm"). Host-wide facts are cached
 * per process and per path once they are definitive; a cached call makes no
 * system call. The first call creates one scratch VM to confirm by trial
 * what capability numbers only hint at. Thread-safe.
 *
 * Returns 0, or a negative errno when the node cannot be used at all
 * (-ENOENT: no such node; -EACCES/-EPERM: no permission; -ENOTTY: not KVM).
 */
KVMNC_API int kvmnc_probe(const char *dev_path, struct kvmnc_features *out);

struct kvmnc_open_opts {
	size_t sz;
	/* enum kvmnc_scope; 0 is KVMNC_SCOPE_SLOT. */
	int scope;
	/* 0 (KVMNC_MECH_NONE): choose automatically; otherwise use exactly this
	 * mechanism or fail with -EOPNOTSUPP. */
	int mechanism;
	/* The KVM node the VM came from; NULL: "/dev/kvm". */
	const char *dev_path;
};

/*
 * Open a handle on the VM @vm_fd. The caller keeps ownership of @vm_fd and
 * must keep it open until kvmnc_close(). Open the handle right after
 * KVM_CREATE_VM: when the guest-PAT quirk is the mechanism chosen, it is
 * disabled here, before any memslot or vCPU exists (the kernel does not
 * recompute mappings that already exist).
 *
 * Errors: -EINVAL bad arguments, -EBADF @vm_fd is not open, -ENOTTY @vm_fd is
 * not a KVM VM, -EOPNOTSUPP the forced mechanism is unavailable, -E2BIG
 * unknown non-zero option bytes, or what kvmnc_probe() returned.
 */
KVMNC_API int kvmnc_open(int vm_fd, const struct kvmnc_open_opts *opts, struct kvmnc **out);

/*
 * Close a handle: closes every device fd the library created for the VM and
 * frees the handle. Non-coherent memslots stay as registered (they belong to
 * the VM). NULL is accepted (returns 0); a handle that is not open gives
 * -EBADF.
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
};

KVMNC_API int kvmnc_get_info(struct kvmnc *h, struct kvmnc_handle_info *info);

/* The host facts as they apply to this handle's VM. */
KVMNC_API int kvmnc_get_features(struct kvmnc *h, struct kvmnc_features *out);

/* KVM memslot flags, same values as <linux/kvm.h>. */
#define KVMNC_MEM_LOG_DIRTY_PAGES (1u << 0)
#define KVMNC_MEM_READONLY	  (1u << 1)
#define KVMNC_MEM_GUEST_MEMFD	  (1u << 2)

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
 * there is none. Whether a slot is non-coherent is fixed when it is created
 * (-EINVAL on an attempt to change it); delete and re-create it instead.
 * Plain regions pass through to KVM unchanged.
 */
KVMNC_API int kvmnc_set_region(struct kvmnc *h, const struct kvmnc_region *r);

/*
 * Declare that device model @device_id (any number the caller chooses, such
 * as a PCI BDF) does non-coherent DMA to guest memory anywhere. With the
 * VIRTIO device mechanism this creates its KVM device and sets
 * KVM_DEV_VIRTIO_NONCOHERENT_SET; with the quirk or native mechanism it is
 * recorded. Enabling an enabled device returns 0 and changes nothing.
 * -EOPNOTSUPP when the scope allows no VM-wide mechanism.
 */
KVMNC_API int kvmnc_device_enable(struct kvmnc *h, uint32_t device_id);

/* Undo kvmnc_device_enable(); -ENOENT if @device_id is not enabled. */
KVMNC_API int kvmnc_device_disable(struct kvmnc *h, uint32_t device_id);

/*
 * Live migration. Returns 1 when the VM holds memory a device may write
 * without snooping (non-coherent regions, enabled devices, or a VM-wide
 * mechanism in force), 0 when not, negative errno on error. A VMM that does
 * not use the helpers below should block migration while this is 1.
 */
KVMNC_API int kvmnc_is_noncoherent(struct kvmnc *h);

/*
 * Copy guest memory (@src, a host address inside a memslot) to @dst so that
 * what a device wrote non-coherently is seen: the source lines are flushed
 * from the CPU caches first where the memory is non-coherent.
 */
KVMNC_API int kvmnc_copy_from_guest(struct kvmnc *h, void *dst, const void *src, size_t len);

/*
 * Copy @src into guest memory (@dst, a host address inside a memslot) and
 * write the lines back to memory where the memory is non-coherent, so that a
 * device reading without snooping sees the data (migration destination).
 */
KVMNC_API int kvmnc_copy_to_guest(struct kvmnc *h, void *dst, const void *src, size_t len);

/*
 * Write back and invalidate the cache lines of [@addr, @addr + @len) if they
 * are non-coherent guest memory; for memory filled by the kernel, such as a
 * post-copy UFFDIO_COPY.
 */
KVMNC_API int kvmnc_flush(struct kvmnc *h, const void *addr, size_t len);

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

/* Text for a negative errno returned by this library; never NULL. */
KVMNC_API const char *kvmnc_strerror(int err);

/* "native", "memslot_flag", "virtio_device", "guest_pat_quirk", "none"; NULL if unknown. */
KVMNC_API const char *kvmnc_mechanism_name(int mechanism);

/* The library's version at run time, e.g. "1.0.0". */
KVMNC_API const char *kvmnc_version(void);
KVMNC_API unsigned int kvmnc_version_major(void);
KVMNC_API unsigned int kvmnc_version_minor(void);
KVMNC_API unsigned int kvmnc_version_patch(void);

#ifdef __cplusplus
}
#endif

#endif /* KVMNC_H */
