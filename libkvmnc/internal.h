/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal interfaces shared by the library's sources. Not installed.
 *
 * The sources form layers; each calls only into the layers below it:
 *
 *   public calls  handle.c (open, close, queries)   memslot.c   device.c   migration.c
 *                 version.c (version getters)
 *   handles       registry.c (tokens, lifetime, locks, fork)   ncstate.c (what is non-coherent)
 *   mechanisms    mechanism.c (the table of mechanisms, names)   probe.c (host and VM facts,
 *                 decisions)   quirk.c
 *   kernel        kvm.c (KVM ioctls)   cpu.c (what the CPU and KVM's module say)
 *                 cacheops.c (cache maintenance)
 *   base          sys.c (system-call and allocation seam; check-seam.py keeps it)
 *                 structs.c (caller structs with sz)   table.c (keyed tables)
 *                 log.c (log callbacks)   errors.c (errno texts and meanings)
 *                 rangeset.c (lock-free range sets)
 */
#ifndef KVMNC_INTERNAL_H
#define KVMNC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/utsname.h>

#include "kvmnc.h"
#include "rangeset.h"

#define KVMNC_DEFAULT_DEV "/dev/kvm"
#define KVMNC_PAGE_SIZE	  4096ULL
/* Caller structs larger than this are refused (-E2BIG), as openat2() does. */
#define KVMNC_STRUCT_MAX 4096
/* Bounds when KVM does not say (1.0 accepted these). */
#define KVMNC_MAX_AS	  16
#define KVMNC_MAX_SLOT_ID 32768

#define offsetofend(TYPE, FIELD) (offsetof(TYPE, FIELD) + sizeof(((TYPE *)0)->FIELD))
#define ARRAY_SIZE(a)		 (sizeof(a) / sizeof((a)[0]))

/* ---- sys.c: the system-call seam ---------------------------------------- */

/*
 * Every call the library makes into the kernel goes through this table, so
 * the unit tests can stand in a fake kernel. Each entry returns a negative
 * errno on failure, never -1.
 */
struct kvmnc_sys {
	int (*open)(const char *path, int flags);
	int (*close)(int fd);
	int (*ioctl)(int fd, unsigned long req, unsigned long arg);
	int (*fcntl_getfd)(int fd);
	/* 0: @a and @b are the same open file (kcmp KCMP_FILE), 1 not, negative errno. */
	int (*same_file)(int a, int b);
	/* The device number of the character device @fd is open on (fstat's st_rdev). */
	int (*fd_rdev)(int fd, uint64_t *rdev);
	int (*mmap_anon)(size_t len, void **out);
	/* A shared read-write mapping of @fd at offset 0 (a vCPU's struct kvm_run). */
	int (*mmap_fd)(int fd, size_t len, void **out);
	int (*munmap)(void *addr, size_t len);
	/* Reads up to len - 1 bytes (until EOF) and NUL-terminates. */
	ssize_t (*read_file)(const char *path, char *buf, size_t len);
	int (*uname)(struct utsname *u);
	/* -EOPNOTSUPP where there is no CPUID. */
	int (*cpuid)(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
	/*
	 * The heap too: every allocation the library makes goes through here,
	 * so the unit tests can fail each one in turn (free() cannot fail).
	 */
	void *(*malloc)(size_t size);
	void *(*calloc)(size_t n, size_t size);
	void *(*realloc)(void *p, size_t size);
};

extern const struct kvmnc_sys kvmnc_sys_real;
extern const struct kvmnc_sys *kvmnc_sys;

#define SYS(name, ...) (kvmnc_sys->name(__VA_ARGS__))

/* ---- log.c: log callbacks; errors.c: errno meanings ----------------------- */

void kvmnc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Returns @err after noting, for this thread, which of its meanings it has
 * (-ENOENT is no KVM node, no memslot, no enabled device or no plan;
 * -EBADF a closed fd or a closed handle): kvmnc_strerror(@err) names that
 * one, as long as it is the last error the library returned to the thread.
 */
int kvmnc_err(int err, const char *meaning);
#define pr_warn(...)  kvmnc_log(KVMNC_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  kvmnc_log(KVMNC_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) kvmnc_log(KVMNC_LOG_DEBUG, __VA_ARGS__)

/*
 * The callback never runs with a library lock held: under a handle's lock,
 * messages go to the handle's queue (hpr_*), and kvmnc_handle_put() delivers
 * them after dropping the lock. pr_* is for code that holds no lock.
 */
#define KVMNC_LOGQ 4
struct kvmnc_logq {
	/* The handle's own callback (kvmnc_set_handle_log()), or NULL: the process's. */
	kvmnc_log_fn fn;
	void *ctx;
	int max;
	uint32_t n, dropped;
	struct {
		int level;
		char msg[240];
	} m[KVMNC_LOGQ];
};

void kvmnc_logq_add(struct kvmnc_logq *q, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kvmnc_logq_deliver(const struct kvmnc_logq *q);
#define hpr_warn(h, ...)  kvmnc_logq_add(&(h)->logq, KVMNC_LOG_WARN, __VA_ARGS__)
#define hpr_info(h, ...)  kvmnc_logq_add(&(h)->logq, KVMNC_LOG_INFO, __VA_ARGS__)
#define hpr_debug(h, ...) kvmnc_logq_add(&(h)->logq, KVMNC_LOG_DEBUG, __VA_ARGS__)
/* fork(): the log lock is taken around it, like every other library lock. */
void kvmnc_log_fork_lock(void);
void kvmnc_log_fork_unlock(void);

/* ---- structs.c: caller structs; table.c: keyed tables; sys.c: strdup ------- */

/*
 * A caller's input struct of known size @known: -EINVAL if its sz is below
 * @min_sz, -E2BIG above KVMNC_STRUCT_MAX or when bytes the library does not
 * know are non-zero. Copies what both know into @dst, zeroing the rest.
 */
int kvmnc_struct_in(void *dst, size_t known, const void *src, size_t min_sz);
/* An output struct's sz is usable: -EINVAL below sizeof(size_t), -E2BIG above the bound. */
int kvmnc_struct_out_ok(const void *dst);
/* Copies an out struct to a caller's @dst, honoring the caller's sz. */
void kvmnc_struct_out(void *dst, const void *src, size_t src_sz);
/* strdup() through the seam's allocator; NULL without memory. */
char *kvmnc_strdup(const char *s);

/*
 * Records keyed by a uint32_t (the first member of each record), dense in
 * an array (so they can be walked) and found by an open-addressing index.
 * kvmnc_table_insert() never fails: callers reserve room before the kernel
 * call whose success they must record.
 */
struct kvmnc_table {
	unsigned char *recs;
	uint32_t *index; /* 0: empty; otherwise record number + 1 */
	size_t rec_size;
	uint32_t n, cap, index_mask;
};

void kvmnc_table_init(struct kvmnc_table *t, size_t rec_size);
void kvmnc_table_free(struct kvmnc_table *t);
/* Room for one more record; -ENOMEM. */
int kvmnc_table_reserve(struct kvmnc_table *t);
/* Room for @more records beyond those held; -ENOMEM. */
int kvmnc_table_reserve_n(struct kvmnc_table *t, uint32_t more);
void *kvmnc_table_find(const struct kvmnc_table *t, uint32_t key);
/*
 * The key must be absent and room reserved; returns the zeroed record, key
 * set. NULL when there is no room (a caller's bug, never an overrun).
 */
void *kvmnc_table_insert(struct kvmnc_table *t, uint32_t key);
void kvmnc_table_remove(struct kvmnc_table *t, void *rec);
static inline void *kvmnc_table_at(const struct kvmnc_table *t, uint32_t i)
{
	return t->recs + (size_t)i * t->rec_size;
}

/* ---- mechanism.c: the table of mechanisms ---------------------------------- */

#define KVMNC_NMECH 4

struct kvmnc_mech_entry {
	int id;		     /* enum kvmnc_mechanism */
	const char *name;    /* kvmnc_mechanism_name() */
	int scope;	     /* the narrowest enum kvmnc_scope that allows it */
	bool serves_devices; /* kvmnc_device_enable() can use it */
	size_t status;	     /* offset of its struct kvmnc_mech_status in kvmnc_features */
	size_t reason;	     /* offset of its reason code in kvmnc_features */
};

/* In order of preference: the narrowest first. */
extern const struct kvmnc_mech_entry kvmnc_mechanisms[KVMNC_NMECH];
/* The entry of mechanism @id, NULL for KVMNC_MECH_NONE or an unknown value. */
const struct kvmnc_mech_entry *kvmnc_mechanism_of(int id);
const struct kvmnc_mech_status *kvmnc_mech_answer(const struct kvmnc_features *f,
						  const struct kvmnc_mech_entry *m);
/* The first mechanism of the table the answer says yes to. */
int kvmnc_recommend(const struct kvmnc_features *f);

/* ---- cpu.c: the CPU as KVM sees it --------------------------------------- */

enum kvmnc_vendor {
	KVMNC_VENDOR_NOT_X86 = 0,
	KVMNC_VENDOR_INTEL, /* VMX: Intel, Centaur, Zhaoxin */
	KVMNC_VENDOR_AMD,   /* SVM: AMD, Hygon */
	KVMNC_VENDOR_UNKNOWN,
};

struct kvmnc_cpu {
	int vendor;
	char vendor_str[13];
	/* CPUID failed for another reason than "not x86" (negative errno), or 0. */
	int cpuid_err;
	/* Self-snoop as the kernel sees it: 1, 0, -1 not x86. */
	int self_snoop;
	/* Where self_snoop came from: true /proc/cpuinfo, false the CPUID fallback. */
	bool self_snoop_kernel;
	/* /proc/cpuinfo could not be read for another reason than its absence (-errno). */
	int self_snoop_err;
	/*
	 * EPT/NPT in use by KVM: 1, 0, or negative errno: -ENOENT not
	 * kvm_intel/kvm_amd (sysfs has kvm.ko without it), -ENODATA no sysfs
	 * to tell, another the read's error.
	 */
	int tdp;
	/* tdp and self_snoop were inferred from the quirk mask (KVM's own word). */
	bool from_quirk_mask;
	/* /proc and /sys were not read (KVMNC_OPEN_KVM_FD opens no path). */
	bool no_paths;
};

/* What the CPU and KVM's module say; with !@read_paths, no file is opened. */
void kvmnc_cpu_probe(struct kvmnc_cpu *c, bool read_paths);
const char *kvmnc_tdp_name(int vendor);
const char *kvmnc_kvm_module(int vendor);

/* Unit tests only: forget what was read from CPUID (cacheops.c selects again). */
void kvmnc_cpu_reset(void);

/* ---- kvm.c: KVM ioctls ---------------------------------------------------- */

/* KVM_GET_API_VERSION: the version, or negative errno (a VM fd: -ENOTTY/-EINVAL). */
int kvmnc_kvm_api_version(int fd);
/* KVM_CREATE_VM of @type on the node @kvm_fd: a VM fd, or negative errno. */
int kvmnc_kvm_create_vm(int kvm_fd, unsigned long type);
int kvmnc_kvm_check(int fd, unsigned long cap);
/* One memslot call, v2 ioctl when @v2 (with guest_memfd), else v1. */
int kvmnc_kvm_set_region(int vm_fd, bool v2, const struct kvmnc_region *r, uint32_t flags);
/* KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST: 0 registered, -ENODEV not, -errno. */
int kvmnc_kvm_device_test(int vm_fd, uint32_t type);
/* A new device fd, or negative errno. */
int kvmnc_kvm_device_create(int vm_fd, uint32_t type);
/* KVM_HAS_DEVICE_ATTR(KVM_DEV_VIRTIO_NONCOHERENT, _SET): 0 it is the VIRTIO device. */
int kvmnc_kvm_device_has_nc(int dev_fd);
/* A new VIRTIO device fd with NONCOHERENT_SET done, or negative errno and no fd. */
int kvmnc_kvm_virtio_device(int vm_fd, uint32_t type);
int kvmnc_kvm_disable_quirks(int vm_fd, uint64_t quirks);
/* KVM_ENABLE_CAP(KVM_CAP_X86_EMULATE_WBINVD), flags and args 0: for the VM's life. */
int kvmnc_kvm_enable_wbinvd(int vm_fd);
/*
 * x86: one vCPU on @vm_fd runs "mov al, [@data_gpa]; hlt" from @code_gpa in
 * real mode (the code and data already in memslots below 64 KiB) and is
 * closed again. The exit reason (KVM_EXIT_HLT when the access completed),
 * or negative errno.
 */
int kvmnc_kvm_access_run(int kvm_fd, int vm_fd, uint64_t code_gpa, uint64_t data_gpa);

/* ---- probe.c: host and VM facts, and what they mean ---------------------- */

/* What a VM answers about itself, on its own fd. */
struct kvmnc_vm_facts {
	int64_t quirks;	  /* KVM_CAP_DISABLE_QUIRKS2, or -errno */
	int mem_attrs;	  /* KVM_CAP_MEMORY_ATTRIBUTES, or -errno */
	int readonly_mem; /* KVM_CAP_READONLY_MEM, or -errno */
	int address_spaces;
	int memslots;
	int flag_cap; /* the flag capability's answer on the VM, or -1 not asked */
	int wbinvd;   /* KVM_CAP_X86_EMULATE_WBINVD on the VM, or -errno */
};

/* One probed KVM node; published entries are immutable and live for the process. */
struct kvmnc_host {
	struct kvmnc_host *next;
	char *key;
	struct kvmnc_features feat;
	struct kvmnc_cpu cpu;
	bool user_memory2;
	/* KVM_CAP_USER_MEMORY2's answer, or -errno. */
	int cap_user_memory2;
	/*
	 * What capability 236 (the flag's on ChromeOS 5.15-6.6, upstream's
	 * KVM_CAP_PRE_FAULT_MEMORY) and 239 (the flag's on ChromeOS 6.12 and
	 * patches/, an arm64 capability upstream) answer: hints only.
	 */
	int cap_cros_flag, cap_flag;
	/* Capability 250: the flag's in the series on Linux 7.2 (v3); free upstream in 7.2. */
	int cap_flag_v3;
	/*
	 * KVM_CAP_X86_EMULATE_WBINVD as a VM answered it (-errno: no VM to
	 * ask), and KVM_ENABLE_CAP of it tried on the scratch VM: 0, -errno, or
	 * 1 not tried (never on the VMM's VM: it cannot be undone).
	 */
	int cap_wbinvd, wbinvd_trial;
	/* KVM_CAP_DISABLE_QUIRKS2 on the node; negative errno if it failed. */
	int64_t sys_quirks_mask;
	/* The node's device number, 0 unknown: aliases of a node share one answer. */
	uint64_t rdev;
	/* 0: the trials ran; otherwise why not (negative errno). */
	int trial_err;
	/* The failure is one that will not go away (a filter, a VM type). */
	bool trial_err_final;
	/* A trial memslot on the caller's VM could not be deleted (never cached). */
	bool trial_slot_left;
};

/*
 * The host answer for node @key: cached (no system call), or probed on
 * @kvm_fd (>= 0, the caller's) or on the node opened at @key. Copies it out.
 */
int kvmnc_probe_host(const char *key, int kvm_fd, struct kvmnc_host *out);
/*
 * As kvmnc_probe_host() for a handle whose VM is @vm_fd, when the node
 * itself cannot be opened: everything that can be asked of the VM is.
 */
void kvmnc_probe_host_from_vm(const char *key, int vm_fd, int node_err, struct kvmnc_host *out);
/*
 * Narrows @host to what VM @vm_fd says about itself, trying on that VM what
 * the host probe could not (a free slot id, a device created and closed).
 * Publishes the result as the host's answer when it is definitive and the
 * VM is of the default type. -ENOTRECOVERABLE: a trial memslot could not be
 * deleted from the VM (its page stays mapped for it); otherwise 0.
 */
int kvmnc_probe_vm(const char *key, struct kvmnc_host *host, int vm_fd, struct kvmnc_vm_facts *vf);
/*
 * KVMNC_OPEN_UC_VRAM_DISPLAY: the VM-wide mechanisms @host has become
 * "no" (KVMNC_REASON_UC_VRAM_DISPLAY) for the handle's VM, and the
 * recommendation follows. How many answers it changed from "yes".
 */
int kvmnc_probe_uc_vram(struct kvmnc_host *host);
void kvmnc_probe_reset(void);		      /* unit tests only */
unsigned int kvmnc_probe_cache_entries(void); /* unit tests only */

/* ---- registry.c: handles --------------------------------------------------- */

struct kvmnc_slot {
	uint32_t slot; /* key: address space << 16 | id */
	uint32_t flags;
	uint64_t gpa, size, hva;
};

struct kvmnc_pending {
	uint32_t slot; /* key */
	bool nc;
	/* A new non-coherent slot: counted in pending_nc. */
	bool counts;
	/* This plan created the VIRTIO device that covers regions. */
	bool took_device;
	uint32_t flags;
	struct kvmnc_region r;
};

struct kvmnc_dev {
	uint32_t id; /* key */
	int fd;	     /* -1 where the mechanism needs no device */
};

/*
 * One memslot's answer: what the VMM declared it (a region, planned or
 * not) or a device made it (every memslot the library knows), with the
 * KVMNC_RANGE_* reasons and the mechanism behind them.
 */
struct kvmnc_ncs_entry {
	uint32_t slot, why;
	int mechanism;
	uint64_t gpa, hva, size;
};

/*
 * The non-coherent ranges as the copy helpers read them, without the
 * handle lock (ncstate.c). Written under the lock only.
 */
struct kvmnc_ncs {
	/* By host address; aux is the GPA. */
	struct kvmnc_rs hva;
	/* By guest address, one set per address space; aux is the host address. */
	struct kvmnc_rs gpa[KVMNC_MAX_AS];
	/* Atomic: the sets say what the tables say (false after a failed update). */
	bool ok;
	/* What the sets hold: "any address" (a device, no known guest memory). */
	bool any;
	/* Atomic: new with every change of the non-coherent state (unique in the process). */
	uint64_t gen;
	/* Between kvmnc_ncs_begin() and _end(): the slot's entry before the change. */
	bool had;
	struct kvmnc_ncs_entry old;
};

/*
 * A handle. Callers never see its address: they hold a token (registry.c)
 * that names its registry slot and generation; every public call turns the
 * token into the handle with a reference (kvmnc_handle_ref/get).
 */
struct kvmnc {
	/* Registry slot, and the token the caller was given for it. */
	uint32_t slot_idx;
	struct kvmnc *token;
	pthread_mutex_t lock;
	/*
	 * Read by the copy helpers without the lock, and without a reference
	 * while their thread's hint answers: it lives in the registry slot,
	 * which is never freed (ncstate.c sets it up and tears it down field
	 * by field, atomically where read so; registry.c).
	 */
	struct kvmnc_ncs *ncs;
	/* The rest is protected by the lock. */
	bool closed;

	int vm_fd; /* the caller's; never closed here */
	int scope;
	uint32_t open_flags;
	int region_mech;
	int device_mech;
	bool quirk_disabled;
	/* KVMNC_OPEN_WBINVD: the library turned on guest WBINVD emulation. */
	bool wbinvd_on;
	uint64_t vm_quirks_mask;
	/* The probe's answer, narrowed by what this VM says. */
	struct kvmnc_host host;
	uint32_t nr_as, nr_slots;

	/* Non-coherent memslots KVM holds. */
	struct kvmnc_table nc;
	/*
	 * Plain memslots KVM holds that went through the library: the guest
	 * memory an enabled device may write. plain_lost: one could not be
	 * recorded (no memory), so what the library knows is incomplete.
	 */
	struct kvmnc_table plain;
	bool plain_lost;
	/* VMM-owned path: planned, outcome not reported yet. */
	struct kvmnc_table pending;
	uint32_t pending_nc;
	struct kvmnc_table devs;
	/* Device the VIRTIO mechanism holds while non-coherent regions exist, or while armed. */
	int region_dev_fd;
	/* kvmnc_vm_wide_arm(): the VM-wide mechanism stays until disarm or close. */
	bool armed;
	/* What the handle's calls said while holding the lock: delivered after it. */
	struct kvmnc_logq logq;
};

/* A new handle, LIVE but not yet open; NULL without memory. */
struct kvmnc *kvmnc_handle_alloc(void);
/*
 * One VM, one handle: records that @h is the handle of @vm_fd, or
 * -EISCONN when another handle of the process is open on that VM (the
 * same fd number, or another fd of the same file where kcmp() can tell).
 * Undone by kvmnc_handle_unbind_vm() at close.
 */
int kvmnc_handle_bind_vm(struct kvmnc *h, int vm_fd);
void kvmnc_handle_unbind_vm(const struct kvmnc *token);
/* Makes an allocated handle reachable through its token; delivers what its opening logged. */
void kvmnc_handle_publish(struct kvmnc *h);
/* Frees an allocated handle that was never published, after delivering its log. */
void kvmnc_handle_discard(struct kvmnc *h);
/*
 * The handle a caller's @token names, with a reference and its lock, in
 * *out; -EBADF if @token names no open handle (NULL, closed, stale, or
 * no token at all).
 */
int kvmnc_handle_get(const struct kvmnc *token, struct kvmnc **out);
void kvmnc_handle_put(struct kvmnc *h);
/*
 * A reference without the lock, for paths that read only what is published
 * atomically (the copy helpers, once their range set is lock-free).
 */
int kvmnc_handle_ref(const struct kvmnc *token, struct kvmnc **out);
void kvmnc_handle_unref(struct kvmnc *h);
/* Ends an open handle: afterwards get/ref fail; -EBADF if not open. The lock is taken. */
int kvmnc_handle_close_begin(const struct kvmnc *token, struct kvmnc **out);
/*
 * The range sets of the open handle @token names, without a reference, or
 * NULL: safe to read at any time (they never go away), to be trusted only
 * through a hint whose generation matches (kvmnc_rs_hinted()).
 */
struct kvmnc_ncs *kvmnc_handle_ncs(const struct kvmnc *token);
/*
 * Benchmarks and live tests only: make @token's region mechanism @mech, as
 * a kernel that has it would have made it (this host may have none), under
 * the handle lock. -EBADF.
 */
int kvmnc_handle_pretend_mechanism(struct kvmnc *token, int mech);
/* Tests and benchmarks only: the open handle @token names (no reference), or NULL. */
struct kvmnc *kvmnc_handle_obj(const struct kvmnc *token);
/* Tests only: handles that exist (open, or closed with references left). */
uint32_t kvmnc_handle_count(void);

/* ---- quirk.c --------------------------------------------------------------- */

int kvmnc_quirk_disable(struct kvmnc *h);

/* Closes the handle's device fds (devices and the region device). */
void kvmnc_release_devices(struct kvmnc *h);

/* ---- ncstate.c: what is non-coherent ------------------------------------------ */

void kvmnc_ncs_init(struct kvmnc *h);
void kvmnc_ncs_destroy(struct kvmnc *h);
/* Under the lock: @slot's entry, false when it is not non-coherent. */
bool kvmnc_ncs_entry(const struct kvmnc *h, uint32_t slot, struct kvmnc_ncs_entry *e);
/* The sets can be read (acquire): otherwise take the lock and ask the tables. */
static inline bool kvmnc_ncs_ok(const struct kvmnc *h)
{
	return __atomic_load_n(&h->ncs->ok, __ATOMIC_ACQUIRE);
}
/* Nothing non-coherent can come of the tables: no region, no plan, no device. */
static inline bool kvmnc_ncs_nothing(const struct kvmnc *h)
{
	return !h->nc.n && !h->pending.n && !h->devs.n;
}

/*
 * Under the lock, around every change of the tables for @slot: begin before
 * (notes its entry), end after (replaces it in the sets if it changed). A
 * failure leaves the sets marked stale; the next end, device change or
 * locked reader rebuilds them. Plain memslots of a VM without non-coherent
 * state cost a few compares.
 */
void kvmnc_ncs_end_slow(struct kvmnc *h, uint32_t slot);
static inline void kvmnc_ncs_begin(struct kvmnc *h, uint32_t slot)
{
	h->ncs->had = !kvmnc_ncs_nothing(h) && kvmnc_ncs_entry(h, slot, &h->ncs->old);
}
static inline void kvmnc_ncs_end(struct kvmnc *h, uint32_t slot)
{
	if (h->ncs->had || !kvmnc_ncs_nothing(h) || !kvmnc_ncs_ok(h))
		kvmnc_ncs_end_slow(h, slot);
}
/* After a device was enabled or disabled; @before is devs.n before the change. */
void kvmnc_ncs_devices(struct kvmnc *h, uint32_t before);
/* Makes the sets what the tables say; false without memory (they stay stale). */
bool kvmnc_ncs_rebuild(struct kvmnc *h);
/* Under the lock: a device is enabled and the library knows no (or not all) guest memory. */
bool kvmnc_ncs_any(const struct kvmnc *h);
/* Under the lock: every entry (none while kvmnc_ncs_any()); stops at fn's first non-zero. */
int kvmnc_ncs_for_each(const struct kvmnc *h, int (*fn)(const struct kvmnc_ncs_entry *, void *),
		       void *arg);
/*
 * Under the lock, from the tables: does [start, start + len) overlap
 * non-coherent memory; host addresses (@as < 0) or guest addresses in
 * address space @as.
 */
bool kvmnc_ncs_overlaps(const struct kvmnc *h, int as, uint64_t start, uint64_t len);
/* Host addresses: kvmnc_ncs_overlaps(h, -1, ...), for tests and the slow path. */
bool kvmnc_range_noncoherent(const struct kvmnc *h, uint64_t start, uint64_t len);

/* ---- migration.c ------------------------------------------------------------ */

/*
 * Tests only: called for every part of a copy or flush that gets cache
 * maintenance (op 0 read, 1 write, 2 flush; the guest side's range).
 */
extern void (*kvmnc_migration_trace)(int op, const void *guest, size_t len);

#endif /* KVMNC_INTERNAL_H */
