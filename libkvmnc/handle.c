// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Handles: opening one on a VM, choosing its mechanisms, and a registry of
 * open handles so that a closed or foreign pointer gives -EBADF instead of a
 * crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat-kvm.h"
#include "internal.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvmnc **registry;
static uint32_t nregistry, cap_registry;

int kvmnc_check_opts(const void *opts, size_t known_sz)
{
	size_t sz = *(const size_t *)opts;

	if (sz < sizeof(size_t))
		return -EINVAL;
	for (size_t i = known_sz; i < sz; i++)
		if (((const unsigned char *)opts)[i])
			return -E2BIG;
	return 0;
}

void kvmnc_copy_out(void *dst, const void *src, size_t src_sz)
{
	size_t dst_sz = *(size_t *)dst;
	size_t n = dst_sz < src_sz ? dst_sz : src_sz;

	/* A newer caller's fields we do not know read as zero. */
	memcpy(dst, src, n);
	if (dst_sz > n)
		memset((char *)dst + n, 0, dst_sz - n);
	*(size_t *)dst = dst_sz;
}

int kvmnc_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	uint32_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 8;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, (size_t)ncap * elem);
	if (!p)
		return -ENOMEM;
	memset((char *)p + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
	*arr = p;
	*cap = ncap;
	return 0;
}

static int registry_find(const struct kvmnc *h)
{
	for (uint32_t i = 0; i < nregistry; i++)
		if (registry[i] == h)
			return (int)i;
	return -1;
}

static void handle_free(struct kvmnc *h)
{
	kvmnc_free_slots(h);
	free(h->devs);
	free(h->ranges);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Takes a reference and the handle lock; -EBADF if @h is not open. */
int kvmnc_handle_get(struct kvmnc *h)
{
	pthread_mutex_lock(&registry_lock);
	if (!h || registry_find(h) < 0) {
		pthread_mutex_unlock(&registry_lock);
		return -EBADF;
	}
	h->refs++;
	pthread_mutex_unlock(&registry_lock);

	pthread_mutex_lock(&h->lock);
	if (h->closed) {
		kvmnc_handle_put(h);
		return -EBADF;
	}
	return 0;
}

void kvmnc_handle_put(struct kvmnc *h)
{
	bool last;

	pthread_mutex_unlock(&h->lock);
	pthread_mutex_lock(&registry_lock);
	last = --h->refs == 0 && h->closed;
	pthread_mutex_unlock(&registry_lock);
	if (last)
		handle_free(h);
}

/* Is @fd a KVM VM, rather than the system fd, a vCPU or no KVM fd at all? */
static int check_vm_fd(int fd)
{
	int r = SYS(fcntl_getfd, fd);

	if (r < 0)
		return r == -EBADF ? -EBADF : r;
	/* VM and system fds answer this; vCPU, device and other fds do not. */
	r = SYS(ioctl, fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
	/* KVM's answer to a process other than the VM's creator, e.g. after fork. */
	if (r == -EIO)
		return -EIO;
	if (r <= 0)
		return -ENOTTY;
	/*
	 * Only the system fd knows the API version; a VM answers ENOTTY (EINVAL
	 * on some architectures). Any other failure says nothing either way.
	 */
	r = SYS(ioctl, fd, KVM_GET_API_VERSION, 0);
	if (r >= 0)
		return -ENOTTY;
	return r == -ENOTTY || r == -EINVAL ? 0 : r;
}

/*
 * What this VM says may narrow the host answer: the quirk mask differs by VM
 * type, and a VM type with private memory refuses the flag.
 */
static void apply_vm_facts(struct kvmnc *h)
{
	struct kvmnc_host *hst = &h->host;
	struct kvmnc_features *f = &hst->feat;
	int r;

	r = SYS(ioctl, h->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2);
	if (r >= 0 && ((uint64_t)r != f->quirks_mask || f->guest_pat_quirk.supported < 0))
		kvmnc_decide_quirk(hst, f, r);
	h->vm_quirks_mask = f->guest_pat_quirk.supported >= 0 ? f->quirks_mask : 0;

	if (f->memslot_flag.supported == 1 && f->memslot_flag_cap) {
		r = SYS(ioctl, h->vm_fd, KVM_CHECK_EXTENSION, f->memslot_flag_cap);
		if (r == 0) {
			f->memslot_flag.supported = 0;
			snprintf(f->memslot_flag.reason, sizeof(f->memslot_flag.reason),
				 "this VM answers 0 for capability %u: the flag is refused for its "
				 "VM type",
				 f->memslot_flag_cap);
		}
	}
	f->recommended = kvmnc_recommend(f);
}

static bool mech_ok(const struct kvmnc_features *f, int mech)
{
	switch (mech) {
	case KVMNC_MECH_NATIVE:
		return f->native.supported == 1;
	case KVMNC_MECH_MEMSLOT_FLAG:
		return f->memslot_flag.supported == 1;
	case KVMNC_MECH_VIRTIO_DEVICE:
		return f->virtio_device.supported == 1;
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		return f->guest_pat_quirk.supported == 1;
	}
	return false;
}

static int mech_scope(int mech)
{
	switch (mech) {
	case KVMNC_MECH_VIRTIO_DEVICE:
		return KVMNC_SCOPE_VM;
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		return KVMNC_SCOPE_VM_IRREVERSIBLE;
	}
	return KVMNC_SCOPE_SLOT;
}

/* The narrowest mechanism first; the memslot flag cannot cover a device. */
static int choose(const struct kvmnc_features *f, int scope, bool for_regions)
{
	static const int order[] = {KVMNC_MECH_NATIVE, KVMNC_MECH_MEMSLOT_FLAG,
				    KVMNC_MECH_VIRTIO_DEVICE, KVMNC_MECH_GUEST_PAT_QUIRK};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!for_regions && order[i] == KVMNC_MECH_MEMSLOT_FLAG)
			continue;
		if (mech_scope(order[i]) <= scope && mech_ok(f, order[i]))
			return order[i];
	}
	return KVMNC_MECH_NONE;
}

static int choose_mechanisms(struct kvmnc *h, int forced)
{
	const struct kvmnc_features *f = &h->host.feat;

	if (forced == KVMNC_MECH_NONE) {
		h->region_mech = choose(f, h->scope, true);
		h->device_mech = choose(f, h->scope, false);
		return 0;
	}
	if (mech_scope(forced) > h->scope)
		return -EINVAL;
	if (!mech_ok(f, forced))
		return -EOPNOTSUPP;
	h->region_mech = forced;
	h->device_mech = forced == KVMNC_MECH_MEMSLOT_FLAG ? KVMNC_MECH_NONE : forced;
	return 0;
}

static int registry_add(struct kvmnc *h)
{
	int r;

	pthread_mutex_lock(&registry_lock);
	r = kvmnc_grow((void **)&registry, &cap_registry, nregistry + 1, sizeof(*registry));
	if (r == 0)
		registry[nregistry++] = h;
	pthread_mutex_unlock(&registry_lock);
	return r;
}

KVMNC_API int kvmnc_open(int vm_fd, const struct kvmnc_open_opts *opts, struct kvmnc **out)
{
	struct kvmnc_open_opts o = {.sz = sizeof(o)};
	struct kvmnc *h;
	int r;

	if (!out)
		return -EINVAL;
	if (opts) {
		r = kvmnc_check_opts(opts, sizeof(*opts));
		if (r < 0)
			return r;
		/* Half a pointer is no pointer: every real version ends on a member. */
		if (opts->sz > offsetof(struct kvmnc_open_opts, dev_path) &&
		    opts->sz < offsetofend(struct kvmnc_open_opts, dev_path))
			return -EINVAL;
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	}
	if (o.scope < KVMNC_SCOPE_SLOT || o.scope > KVMNC_SCOPE_VM_IRREVERSIBLE ||
	    o.mechanism < KVMNC_MECH_NONE || o.mechanism > KVMNC_MECH_GUEST_PAT_QUIRK ||
	    (o.dev_path && !o.dev_path[0]))
		return -EINVAL;
	if (vm_fd < 0)
		return -EBADF;

	r = check_vm_fd(vm_fd);
	if (r < 0)
		return r;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	h->vm_fd = vm_fd;
	h->scope = o.scope;
	h->region_dev_fd = -1;

	r = kvmnc_probe_host(o.dev_path, &h->host);
	if (r < 0)
		goto err;
	apply_vm_facts(h);
	r = choose_mechanisms(h, o.mechanism);
	if (r < 0)
		goto err;

	/*
	 * The quirk does not recompute existing mappings, so it goes in now,
	 * before the VMM adds memslots, unless the memslot flag serves regions
	 * and the quirk only backs kvmnc_device_enable().
	 */
	if (h->region_mech == KVMNC_MECH_GUEST_PAT_QUIRK) {
		r = kvmnc_quirk_disable(h);
		if (r < 0)
			goto err;
	}

	r = registry_add(h);
	if (r < 0)
		goto err;
	pr_debug("handle on VM fd %d: regions use %s, devices use %s", vm_fd,
		 kvmnc_mechanism_name(h->region_mech), kvmnc_mechanism_name(h->device_mech));
	*out = h;
	return 0;
err:
	handle_free(h);
	return r;
}

KVMNC_API int kvmnc_close(struct kvmnc *h)
{
	int i;

	if (!h)
		return 0;
	pthread_mutex_lock(&registry_lock);
	i = registry_find(h);
	if (i < 0) {
		pthread_mutex_unlock(&registry_lock);
		return -EBADF;
	}
	registry[i] = registry[--nregistry];
	h->refs++;
	pthread_mutex_unlock(&registry_lock);

	pthread_mutex_lock(&h->lock);
	kvmnc_close_devices(h);
	/* Written under both locks: handle_get reads it under one, put under the other. */
	pthread_mutex_lock(&registry_lock);
	h->closed = true;
	pthread_mutex_unlock(&registry_lock);
	kvmnc_handle_put(h);
	return 0;
}

KVMNC_API int kvmnc_get_info(struct kvmnc *h, struct kvmnc_handle_info *info)
{
	struct kvmnc_handle_info i = {.sz = sizeof(i)};
	int r;

	if (!info || info->sz < sizeof(info->sz))
		return -EINVAL;
	r = kvmnc_handle_get(h);
	if (r < 0)
		return r;
	i.region_mechanism = h->region_mech;
	i.device_mechanism = h->device_mech;
	i.scope = h->scope;
	i.quirk_disabled = h->quirk_disabled;
	i.noncoherent_regions = h->nc_regions;
	i.enabled_devices = h->ndevs;
	i.vm_quirks_mask = h->vm_quirks_mask;
	kvmnc_handle_put(h);
	kvmnc_copy_out(info, &i, sizeof(i));
	return 0;
}

KVMNC_API int kvmnc_get_features(struct kvmnc *h, struct kvmnc_features *out)
{
	int r;

	if (!out || out->sz < sizeof(out->sz))
		return -EINVAL;
	r = kvmnc_handle_get(h);
	if (r < 0)
		return r;
	kvmnc_copy_out(out, &h->host.feat, sizeof(h->host.feat));
	kvmnc_handle_put(h);
	return 0;
}
