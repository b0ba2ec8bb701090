/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal interfaces shared by the library's sources. Not installed. */
#ifndef KVMNC_INTERNAL_H
#define KVMNC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/utsname.h>

#include "kvmnc.h"

#define KVMNC_DEFAULT_DEV "/dev/kvm"
#define KVMNC_PAGE_SIZE	  4096ULL
#define KVMNC_MAX_AS	  16	/* address spaces; x86 uses two (SMM) */
#define KVMNC_MAX_SLOT_ID 32768 /* KVM_MEM_SLOTS_NUM is SHRT_MAX */

#define offsetofend(TYPE, FIELD) (offsetof(TYPE, FIELD) + sizeof(((TYPE *)0)->FIELD))

/*
 * The system-call seam: every call the library makes into the kernel goes
 * through this table, so the unit tests can stand in a fake kernel. Each
 * entry returns a negative errno on failure, never -1.
 */
struct kvmnc_sys {
	int (*open)(const char *path, int flags);
	int (*close)(int fd);
	int (*ioctl)(int fd, unsigned long req, unsigned long arg);
	int (*fcntl_getfd)(int fd);
	int (*mmap_anon)(size_t len, void **out);
	int (*munmap)(void *addr, size_t len);
	/* Reads up to len - 1 bytes and NUL-terminates. */
	ssize_t (*read_file)(const char *path, char *buf, size_t len);
	int (*uname)(struct utsname *u);
	/* -EOPNOTSUPP where there is no CPUID. */
	int (*cpuid)(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
};

extern const struct kvmnc_sys kvmnc_sys_real;
extern const struct kvmnc_sys *kvmnc_sys;

#define SYS(name, ...) (kvmnc_sys->name(__VA_ARGS__))

enum kvmnc_vendor {
	KVMNC_VENDOR_NOT_X86 = 0,
	KVMNC_VENDOR_INTEL, /* VMX: Intel, Centaur, Zhaoxin */
	KVMNC_VENDOR_AMD,   /* SVM: AMD, Hygon */
	KVMNC_VENDOR_UNKNOWN,
};

/* One probed KVM node; entries live for the rest of the process. */
struct kvmnc_host {
	struct kvmnc_host *next;
	char *path;
	struct kvmnc_features feat;
	int vendor;
	int cpuid_err; /* CPUID failed for another reason than "not x86" */
	bool user_memory2;
	/* KVM_CAP_DISABLE_QUIRKS2 on the node; negative errno if it failed. */
	int64_t sys_quirks_mask;
};

struct kvmnc_slot {
	uint64_t gpa;
	uint64_t size;
	uint64_t hva;
	uint32_t flags;
	bool present;
	bool noncoherent;
};

struct kvmnc_dev {
	uint32_t id;
	int fd; /* -1 where the mechanism needs no device */
};

struct kvmnc_range {
	uint64_t start;
	uint64_t len;
	uint32_t slot;
};

struct kvmnc {
	pthread_mutex_t lock;
	/* Protected by the registry lock. */
	unsigned int refs;
	bool closed;

	int vm_fd; /* the caller's; never closed here */
	int scope;
	int region_mech;
	int device_mech;
	bool quirk_disabled;
	uint64_t vm_quirks_mask;
	/* The probe's answer, amended with what this VM says. */
	struct kvmnc_host host;

	struct kvmnc_slot *slots[KVMNC_MAX_AS];
	uint32_t nslots[KVMNC_MAX_AS];
	uint32_t nc_regions;

	/* Host ranges of non-coherent slots, for the migration helpers. */
	struct kvmnc_range *ranges;
	uint32_t nranges, cap_ranges;

	struct kvmnc_dev *devs;
	uint32_t ndevs, cap_devs;
	/* Device the VIRTIO mechanism holds while non-coherent regions exist. */
	int region_dev_fd;
};

/* errors.c */
void kvmnc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pr_warn(...)  kvmnc_log(KVMNC_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  kvmnc_log(KVMNC_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) kvmnc_log(KVMNC_LOG_DEBUG, __VA_ARGS__)

/* handle.c */
int kvmnc_check_opts(const void *opts, size_t known_sz);
int kvmnc_handle_get(struct kvmnc *h);
void kvmnc_handle_put(struct kvmnc *h);
int kvmnc_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem);

/* probe.c */
int kvmnc_probe_host(const char *path, struct kvmnc_host *out);
/* @mask is KVM_CAP_DISABLE_QUIRKS2's answer, or a negative errno. */
void kvmnc_decide_quirk(const struct kvmnc_host *hst, struct kvmnc_features *f, int64_t mask);
int kvmnc_recommend(const struct kvmnc_features *f);
/* Copies an out struct to a caller's @dst, honoring the caller's sz. */
void kvmnc_copy_out(void *dst, const void *src, size_t src_sz);
void kvmnc_probe_reset(void); /* unit tests only */

/* device.c */
int kvmnc_create_virtio_device(int vm_fd);
void kvmnc_close_devices(struct kvmnc *h);

/* quirk.c */
int kvmnc_quirk_disable(struct kvmnc *h);

/* memslot.c */
void kvmnc_free_slots(struct kvmnc *h);

/* migration.c */
bool kvmnc_range_noncoherent(const struct kvmnc *h, uint64_t start, uint64_t len);

#endif /* KVMNC_INTERNAL_H */
