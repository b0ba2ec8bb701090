/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake KVM behind the library's system-call seam. A personality describes
 * one kernel a VMM meets (DESIGN.md §3); the fake answers like that kernel
 * and records what the library did to it, so tests can assert both the
 * answers and the side effects, and can fail any one call on purpose.
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
	/* errno for opening the node; 0 opens. */
	int open_err;
	int api_version;
	/* errno for KVM_CREATE_VM; 0 creates. */
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
	/* Contents of kvm_intel's ept / kvm_amd's npt parameters; NULL: no file. */
	const char *ept;
	const char *npt;
	/* What the VM (not the node) answers for the flag capability; -1: same. */
	int vm_flag_cap;
};

/* Built-in personalities, by name; NULL if unknown. */
const struct fake_personality *fake_personality(const char *name);
extern const struct fake_personality fake_personalities[];
extern const int fake_npersonalities;

/* Reset all state and answer as @p from now on. Installs the fake seam. */
void fake_reset(const struct fake_personality *p);
/* Put the real system calls back. */
void fake_uninstall(void);

/* Fail the @nth seam call from now (1-based) with -@err; 0 disables. */
void fake_fail_nth(int nth, int err);
/* Seam calls made since the last reset. */
int fake_calls(void);
/* Whether the injected failure was hit. */
bool fake_fail_hit(void);

/* Open fds and mappings the fake currently has outstanding. */
int fake_open_fds(void);
int fake_open_maps(void);

/* Fake fds of other kinds, for bad-input tests. */
int fake_open_system_fd(void);
int fake_open_other_fd(void);
int fake_open_vcpu_fd(int vm_fd);
/* A VM fd as the VMM would hold it. */
int fake_create_vm(void);
void fake_close(int fd);

/* Observations on the VM behind @vm_fd. */
struct fake_vm_state {
	int nslots;
	int noncoherent_devices; /* devices with NONCOHERENT_SET */
	int devices;		 /* device fds open */
	uint64_t disabled_quirks;
	int v1_calls, v2_calls;
};
void fake_vm_state(int vm_fd, struct fake_vm_state *st);
/* Flags of @slot in @vm_fd, or -1 if absent. */
int64_t fake_slot_flags(int vm_fd, uint32_t slot);

#endif
