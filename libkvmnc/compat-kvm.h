/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM UAPI definitions newer than the oldest headers we build against
 * (Debian 12's linux-libc-dev is 6.1). System headers win wherever they
 * define a symbol; the static asserts at the end catch a header whose value
 * or layout disagrees with what this library speaks. Build-only: never
 * installed.
 */
#ifndef KVMNC_COMPAT_KVM_H
#define KVMNC_COMPAT_KVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <sys/ioctl.h>

/* Since 5.16. */
#ifndef KVM_CAP_DISABLE_QUIRKS2
#define KVM_CAP_DISABLE_QUIRKS2 213
#endif

/* Since 6.8. */
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 guest_memfd_offset;
	__u32 guest_memfd;
	__u32 pad1;
	__u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

/* Upstream meaning of the two numbers ChromeOS gave its flag capability. */
#define KVMNC_CAP_PRE_FAULT_MEMORY	   236 /* upstream 6.10+ */
#define KVMNC_CAP_ARM_WRITABLE_IMP_ID_REGS 239 /* upstream 6.15+, arm64 */

/*
 * KVM_X86_QUIRK_IGNORE_GUEST_PAT: upstream 6.16, stable 6.12.78+. Spelled
 * here so the library builds on every architecture; it only means something
 * on x86.
 */
#define KVMNC_QUIRK_IGNORE_GUEST_PAT (1ULL << 9)

/*
 * The memslot flag of Yan Zhao's v1 series (Jan 2024), ChromeOS and our
 * patches/. Out of tree: the capability number differs between kernels.
 */
#ifndef KVM_MEM_NON_COHERENT_DMA
#define KVM_MEM_NON_COHERENT_DMA (1UL << 3)
#endif
/* A vCPU exit for a guest access KVM cannot serve itself (6.8+; KVM Userfault uses it). */
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif

/*
 * KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA has a different number on each
 * kernel that has it, and upstream reuses two of them, so the library
 * names each number and asks for all (probe.c decides what an answer
 * means; a trial memslot decides whether the flag is there):
 *   236  ChromeOS 5.15-6.6; upstream KVM_CAP_PRE_FAULT_MEMORY (6.10+, true
 *        on x86), so it counts only where there is no
 *        KVM_SET_USER_MEMORY_REGION2;
 *   239  ChromeOS 6.12 and the series' 6.12 backport; upstream
 *        KVM_CAP_ARM_WRITABLE_IMP_ID_REGS (6.15+, arm64 only);
 *   250  the series on Linux 7.2 (v3); free upstream in 7.2, whose
 *        capabilities end at 249 (KVM_CAP_S390_HPAGE_2G).
 * The memslot flag is bit 3 on all of them.
 */
#define KVMNC_CAP_NONCOHERENT_DMA_CROS_OLD 236
#define KVMNC_CAP_NONCOHERENT_DMA_612	   239
#define KVMNC_CAP_NONCOHERENT_DMA_V3	   250
/*
 * The name alone means the 6.12 number where the headers lack it (the
 * kernel tier's guest programs use it); the library asks for each number
 * by its KVMNC_ name, whatever the headers say.
 */
#ifndef KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA
#define KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA KVMNC_CAP_NONCOHERENT_DMA_612
#endif

/*
 * Guest WBINVD emulation on request, the series' v3 (7.2) and its 6.12
 * backport alike: KVM_CHECK_EXTENSION on a VM answers 1, and KVM_ENABLE_CAP
 * with flags and args 0 turns it on for the VM for good (-EINVAL once
 * vCPUs exist, or with any flag or argument). In v3 nothing else makes KVM
 * emulate WBINVD: neither the memslot flag nor the VIRTIO device.
 */
#ifndef KVM_CAP_X86_EMULATE_WBINVD
#define KVM_CAP_X86_EMULATE_WBINVD 251
#endif

/*
 * The KVM VIRTIO device of the RFC, by kernel: 32 in the series' 6.12
 * backport (well clear of 6.12's enum, which ends at 11), 17 in the 7.2
 * series (right after KVM_DEV_TYPE_ARM_VGIC_V5 = 16). Out-of-tree ABI, so
 * the probe confirms the attribute before it believes a number.
 */
#define KVMNC_DEV_TYPE_VIRTIO_612 32
#define KVMNC_DEV_TYPE_VIRTIO_V3  17
/* As KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA above: the 6.12 number, for the tests. */
#ifndef KVM_DEV_TYPE_VIRTIO
#define KVM_DEV_TYPE_VIRTIO KVMNC_DEV_TYPE_VIRTIO_612
#endif
#ifndef KVM_DEV_VIRTIO_NONCOHERENT
#define KVM_DEV_VIRTIO_NONCOHERENT 1
#endif
#ifndef KVM_DEV_VIRTIO_NONCOHERENT_SET
#define KVM_DEV_VIRTIO_NONCOHERENT_SET 1
#endif

/* The RFC as posted put KVM_DEV_TYPE_VIRTIO after KVM_DEV_TYPE_RISCV_AIA. */
#define KVMNC_DEV_TYPE_VIRTIO_SEED 12

/* Since 6.8; spelled apart so that older headers build. */
#define KVMNC_CAP_MEMORY_ATTRIBUTES    233
#define KVMNC_CAP_VM_TYPES	       235
#define KVMNC_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)

#define KVMNC_KVM_API_VERSION 12

/* Our numbers, whoever defined them. */
_Static_assert(KVM_CAP_DISABLE_QUIRKS2 == 213, "KVM_CAP_DISABLE_QUIRKS2");
_Static_assert(KVM_CAP_USER_MEMORY2 == 231, "KVM_CAP_USER_MEMORY2");
_Static_assert(KVM_MEM_GUEST_MEMFD == (1UL << 2), "KVM_MEM_GUEST_MEMFD");
_Static_assert(KVM_MEM_NON_COHERENT_DMA == (1UL << 3), "KVM_MEM_NON_COHERENT_DMA");
/* Headers of a kernel with the series: its numbers must be ones the library asks for. */
_Static_assert(KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA == KVMNC_CAP_NONCOHERENT_DMA_612 ||
		       KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA == KVMNC_CAP_NONCOHERENT_DMA_V3,
	       "flag capability");
_Static_assert(KVM_DEV_TYPE_VIRTIO == KVMNC_DEV_TYPE_VIRTIO_612 ||
		       KVM_DEV_TYPE_VIRTIO == KVMNC_DEV_TYPE_VIRTIO_V3,
	       "KVM_DEV_TYPE_VIRTIO");
_Static_assert(KVM_CAP_X86_EMULATE_WBINVD == 251, "KVM_CAP_X86_EMULATE_WBINVD");
_Static_assert(KVM_CAP_NR_MEMSLOTS == 10 && KVM_CAP_READONLY_MEM == 81 &&
		       KVM_CAP_MULTI_ADDRESS_SPACE == 118,
	       "capabilities asked of a VM");
#ifdef KVM_CAP_MEMORY_ATTRIBUTES
_Static_assert(KVM_CAP_MEMORY_ATTRIBUTES == KVMNC_CAP_MEMORY_ATTRIBUTES, "MEMORY_ATTRIBUTES");
_Static_assert(KVM_MEMORY_ATTRIBUTE_PRIVATE == KVMNC_MEMORY_ATTRIBUTE_PRIVATE, "ATTRIBUTE_PRIVATE");
#endif
#ifdef KVM_CAP_VM_TYPES
_Static_assert(KVM_CAP_VM_TYPES == KVMNC_CAP_VM_TYPES, "KVM_CAP_VM_TYPES");
#endif
_Static_assert(KVM_DEV_VIRTIO_NONCOHERENT == 1 && KVM_DEV_VIRTIO_NONCOHERENT_SET == 1,
	       "KVM_DEV_VIRTIO_NONCOHERENT(_SET)");

/* Layouts as the kernel expects them. */
_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160, "region2 size");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, guest_phys_addr) == 8, "region2");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, userspace_addr) == 24, "region2");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, guest_memfd) == 40, "region2");
_Static_assert(sizeof(struct kvm_userspace_memory_region) == 32, "region size");
_Static_assert(sizeof(struct kvm_create_device) == 12, "create_device size");
_Static_assert(sizeof(struct kvm_device_attr) == 24, "device_attr size");
_Static_assert(sizeof(struct kvm_enable_cap) == 104, "enable_cap size");

/* Each ioctl's argument size matches the size encoded in its number. */
#define KVMNC_IOC_ARG_OK(req, type) (_IOC_SIZE(req) == sizeof(type))
_Static_assert(KVMNC_IOC_ARG_OK(KVM_SET_USER_MEMORY_REGION2, struct kvm_userspace_memory_region2),
	       "KVM_SET_USER_MEMORY_REGION2");
_Static_assert(KVMNC_IOC_ARG_OK(KVM_SET_USER_MEMORY_REGION, struct kvm_userspace_memory_region),
	       "KVM_SET_USER_MEMORY_REGION");
_Static_assert(KVMNC_IOC_ARG_OK(KVM_CREATE_DEVICE, struct kvm_create_device), "KVM_CREATE_DEVICE");
_Static_assert(KVMNC_IOC_ARG_OK(KVM_SET_DEVICE_ATTR, struct kvm_device_attr),
	       "KVM_SET_DEVICE_ATTR");
_Static_assert(KVMNC_IOC_ARG_OK(KVM_HAS_DEVICE_ATTR, struct kvm_device_attr),
	       "KVM_HAS_DEVICE_ATTR");
_Static_assert(KVMNC_IOC_ARG_OK(KVM_ENABLE_CAP, struct kvm_enable_cap), "KVM_ENABLE_CAP");

#endif /* KVMNC_COMPAT_KVM_H */
