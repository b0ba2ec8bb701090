// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Opening a handle on a VM: checking the fds, asking the VM what differs
 * from the host answer, choosing the narrowest mechanism the caller
 * allows, and the VM-wide step that cannot wait. Closing, and the queries.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "compat-kvm.h"
#include "internal.h"

#define OPEN_FLAGS                                                                                 \
	(KVMNC_OPEN_DEVICES | KVMNC_OPEN_KVM_FD | KVMNC_OPEN_WBINVD | KVMNC_OPEN_UC_VRAM_DISPLAY)

/* QEMU's rule, named in what the library logs when it applies it. */
#define UC_VRAM_RULE "QEMU's rule \"i386/kvm: Honor guest PAT on x86, absent Bochs display\""

/* Is @fd a KVM VM, rather than the system fd, a vCPU or no KVM fd at all? */
static int check_vm_fd(int fd)
{
	int r = SYS(fcntl_getfd, fd);

	if (r < 0)
		return r == -EBADF ? kvmnc_err(-EBADF, "The VM fd is not an open file descriptor")
				   : r;
	/* VM and system fds answer this; vCPU, device and other fds do not. */
	r = kvmnc_kvm_check(fd, KVM_CAP_USER_MEMORY);
	/* KVM's answer to a process other than the VM's creator, e.g. after fork. */
	if (r == -EIO)
		return -EIO;
	if (r <= 0)
		return -ENOTTY;
	/*
	 * Only the system fd knows the API version; a VM answers ENOTTY (EINVAL
	 * on some architectures). Any other failure says nothing either way.
	 */
	r = kvmnc_kvm_api_version(fd);
	if (r >= 0)
		return -ENOTTY;
	return r == -ENOTTY || r == -EINVAL ? 0 : r;
}

/* The narrowest mechanism first (the table's order, mechanism.c). */
static int choose(const struct kvmnc_features *f, int scope, bool for_regions)
{
	for (size_t i = 0; i < KVMNC_NMECH; i++) {
		const struct kvmnc_mech_entry *m = &kvmnc_mechanisms[i];
		int supported = kvmnc_mech_answer(f, m)->supported;

		if ((!for_regions && !m->serves_devices) || m->scope > scope)
			continue;
		if (supported == 1)
			return m->id;
		/*
		 * A narrower mechanism that could not be told may be there: a
		 * wider one (VM-wide, or irreversible) must not stand in for it.
		 */
		if (supported < 0)
			return KVMNC_MECH_NONE;
	}
	return KVMNC_MECH_NONE;
}

static int choose_mechanisms(struct kvmnc *h, int forced)
{
	const struct kvmnc_features *f = &h->host.feat;
	const struct kvmnc_mech_entry *m;

	if (forced == KVMNC_MECH_NONE) {
		h->region_mech = choose(f, h->scope, true);
		h->device_mech = choose(f, h->scope, false);
		return 0;
	}
	m = kvmnc_mechanism_of(forced);
	if (m->scope > h->scope)
		return -EINVAL;
	if (kvmnc_mech_answer(f, m)->supported != 1)
		return -EOPNOTSUPP;
	h->region_mech = forced;
	h->device_mech = m->serves_devices ? forced : KVMNC_MECH_NONE;
	return 0;
}

static int opts_in(const struct kvmnc_open_opts *opts, struct kvmnc_open_opts *o)
{
	int r;

	if (!opts) {
		memset(o, 0, sizeof(*o));
		o->sz = sizeof(*o);
		return 0;
	}
	r = kvmnc_struct_in(o, sizeof(*o), opts, sizeof(size_t));
	if (r < 0)
		return r;
	/* Half a pointer is no pointer: every real version ends on a member. */
	if (opts->sz > offsetof(struct kvmnc_open_opts, dev_path) &&
	    opts->sz < offsetofend(struct kvmnc_open_opts, dev_path))
		return -EINVAL;
	if (o->scope < KVMNC_SCOPE_SLOT || o->scope > KVMNC_SCOPE_VM_IRREVERSIBLE ||
	    o->mechanism < KVMNC_MECH_NONE || o->mechanism > KVMNC_MECH_GUEST_PAT_QUIRK ||
	    (o->flags & ~OPEN_FLAGS))
		return -EINVAL;
	if (o->dev_path && (!o->dev_path[0] || strnlen(o->dev_path, PATH_MAX) == PATH_MAX))
		return -EINVAL;
	if ((o->flags & KVMNC_OPEN_KVM_FD) && o->kvm_fd < 0)
		return kvmnc_err(-EBADF, "opts.kvm_fd is not an open file descriptor");
	/* The caller's own options contradict each other: so on every kernel. */
	if ((o->flags & KVMNC_OPEN_UC_VRAM_DISPLAY) && o->mechanism != KVMNC_MECH_NONE &&
	    kvmnc_mechanism_of(o->mechanism)->scope > KVMNC_SCOPE_SLOT) {
		pr_warn("kvmnc_open: %s is VM-wide, and KVMNC_OPEN_UC_VRAM_DISPLAY rules out "
			"every VM-wide mechanism (" UC_VRAM_RULE
			": the guest-PAT quirk stays on if a bochs display exists)",
			kvmnc_mechanism_name(o->mechanism));
		return kvmnc_err(-EINVAL, "KVMNC_OPEN_UC_VRAM_DISPLAY rules out the VM-wide "
					  "mechanism forced in opts.mechanism");
	}
	return 0;
}

/* The host answer, by the fds the caller has. */
static int host_facts(struct kvmnc *h, const struct kvmnc_open_opts *o, const char *key)
{
	int r;

	if (o->flags & KVMNC_OPEN_KVM_FD)
		return kvmnc_probe_host(key, o->kvm_fd, &h->host);
	r = kvmnc_probe_host(key, -1, &h->host);
	/* An unprivileged or sandboxed VMM was handed its VM: ask the VM instead. */
	if (!o->dev_path && (r == -EACCES || r == -EPERM || r == -ENOENT)) {
		pr_info("%s: %s; answering from the VM fd", key, strerror(-r));
		kvmnc_probe_host_from_vm(key, h->vm_fd, r, &h->host);
		r = 0;
	}
	return r;
}

KVMNC_API int kvmnc_open(int vm_fd, const struct kvmnc_open_opts *opts, struct kvmnc **out)
{
	struct kvmnc_open_opts o;
	struct kvmnc_vm_facts vf;
	const char *key;
	struct kvmnc *h;
	int r;

	if (!out)
		return -EINVAL;
	r = opts_in(opts, &o);
	if (r < 0)
		return r;
	if (vm_fd < 0)
		return kvmnc_err(-EBADF, "The VM fd is not an open file descriptor");
	r = check_vm_fd(vm_fd);
	if (r < 0)
		return r;

	h = kvmnc_handle_alloc();
	if (!h)
		return -ENOMEM;
	/* Before any trial on the VM: a second handle would keep its own devices and answers. */
	r = kvmnc_handle_bind_vm(h, vm_fd);
	if (r < 0)
		goto err;
	h->vm_fd = vm_fd;
	h->scope = o.scope;
	h->open_flags = o.flags;

	key = o.dev_path ? o.dev_path : KVMNC_DEFAULT_DEV;
	r = host_facts(h, &o, key);
	if (r < 0)
		goto err;
	r = kvmnc_probe_vm(key, &h->host, vm_fd, &vf);
	if (r < 0)
		goto err;
	h->vm_quirks_mask =
		h->host.feat.guest_pat_quirk.supported >= 0 ? h->host.feat.quirks_mask : 0;
	h->nr_as = vf.address_spaces > 0 ? (uint32_t)vf.address_spaces : KVMNC_MAX_AS;
	h->nr_slots = vf.memslots > 0 ? (uint32_t)vf.memslots : KVMNC_MAX_SLOT_ID;
	if (o.flags & KVMNC_OPEN_UC_VRAM_DISPLAY) {
		int region = choose(&h->host.feat, h->scope, true);
		int device = choose(&h->host.feat, h->scope, false);

		kvmnc_probe_uc_vram(&h->host);
		r = choose_mechanisms(h, o.mechanism);
		if (r == 0 && (region != h->region_mech || device != h->device_mech))
			/* The handle's queue keeps 240 bytes a message: the rule by name. */
			hpr_info(h,
				 "KVMNC_OPEN_UC_VRAM_DISPLAY: regions use %s (not %s), devices %s "
				 "(not %s): " UC_VRAM_RULE " keeps the guest-PAT quirk on",
				 kvmnc_mechanism_name(h->region_mech), kvmnc_mechanism_name(region),
				 kvmnc_mechanism_name(h->device_mech),
				 kvmnc_mechanism_name(device));
	} else {
		r = choose_mechanisms(h, o.mechanism);
	}
	if (r < 0)
		goto err;
	/* Before any step is taken: a kernel without it leaves the VM untouched. */
	if (o.flags & KVMNC_OPEN_WBINVD) {
		const struct kvmnc_mech_status *w = &h->host.feat.wbinvd_emulation;

		if (w->supported != 1) {
			hpr_warn(h, "KVMNC_OPEN_WBINVD: no WBINVD emulation on request here: %s",
				 w->reason);
			r = w->supported < 0 ? w->supported
					     : kvmnc_err(-EOPNOTSUPP,
							 "KVMNC_OPEN_WBINVD: this kernel does not "
							 "emulate WBINVD on request");
			goto err;
		}
	}

	/*
	 * Room for the first record of each kind, so that no later call grows
	 * on failure; before the quirk, which no failure after it can undo.
	 */
	r = kvmnc_table_reserve(&h->nc);
	if (r == 0)
		r = kvmnc_table_reserve(&h->pending);
	if (r == 0)
		r = kvmnc_table_reserve(&h->devs);
	if (r < 0)
		goto err;

	/*
	 * Two steps no call undoes. KVM refuses WBINVD emulation once the VM
	 * has vCPUs, and nothing else either step can meet once checked, so
	 * that one goes first: a refusal leaves the VM as it was.
	 */
	if (o.flags & KVMNC_OPEN_WBINVD) {
		r = kvmnc_kvm_enable_wbinvd(vm_fd);
		if (r == -EINVAL)
			r = kvmnc_err(-EBUSY, "KVM refused WBINVD emulation: the VM has vCPUs "
					      "already (open the handle before KVM_CREATE_VCPU)");
		if (r < 0) {
			hpr_warn(h, "enabling KVM_CAP_X86_EMULATE_WBINVD failed: %d", r);
			goto err;
		}
		h->wbinvd_on = true;
		hpr_info(h, "guest WBINVD emulation on for the VM's life: each guest WBINVD "
			    "writes back and invalidates the caches of every CPU its vCPUs ran on");
	}

	/*
	 * The quirk does not recompute existing mappings, so it goes in now,
	 * before the VMM adds memslots: for regions, or for devices the caller
	 * declared. Later is too late (kvmnc_device_enable() says -EBUSY).
	 */
	if (h->region_mech == KVMNC_MECH_GUEST_PAT_QUIRK ||
	    (h->device_mech == KVMNC_MECH_GUEST_PAT_QUIRK && (o.flags & KVMNC_OPEN_DEVICES))) {
		r = kvmnc_quirk_disable(h);
		if (r < 0 && h->wbinvd_on) {
			hpr_warn(h,
				 "guest WBINVD emulation stays on (it cannot be undone), but the "
				 "handle failed: discard the VM");
			r = kvmnc_err(-ENOTRECOVERABLE,
				      "WBINVD emulation was turned on for the VM, then disabling "
				      "the guest-PAT quirk failed; discard the VM");
		}
		if (r < 0)
			goto err;
	}

	hpr_debug(h, "handle on VM fd %d: regions use %s, devices use %s", vm_fd,
		  kvmnc_mechanism_name(h->region_mech), kvmnc_mechanism_name(h->device_mech));
	kvmnc_handle_publish(h);
	/* The caller's name for the handle is a token, never its address (registry.c). */
	*out = h->token;
	return 0;
err:
	kvmnc_handle_discard(h);
	return r;
}

KVMNC_API int kvmnc_close(struct kvmnc *hd)
{
	struct kvmnc *h;
	int r;

	if (!hd)
		return 0;
	r = kvmnc_handle_close_begin(hd, &h);
	if (r < 0)
		return r;
	/* Not silent: those regions lose what made guest PAT reach them. */
	if (h->region_mech == KVMNC_MECH_VIRTIO_DEVICE && h->nc.n)
		hpr_warn(
			h,
			"kvmnc_close: closing the VIRTIO device; %u non-coherent regions of the VM "
			"are no longer honored",
			h->nc.n);
	kvmnc_release_devices(h);
	h->closed = true;
	kvmnc_handle_put(h);
	/* Without the handle lock (the registry lock comes first, as at fork). */
	kvmnc_handle_unbind_vm(hd);
	return 0;
}

int kvmnc_handle_pretend_mechanism(struct kvmnc *hd, int mech)
{
	struct kvmnc *h;
	int r = kvmnc_handle_get(hd, &h);

	if (r < 0)
		return r;
	h->region_mech = mech;
	kvmnc_handle_put(h);
	return 0;
}

KVMNC_API int kvmnc_get_info(struct kvmnc *hd, struct kvmnc_handle_info *info)
{
	struct kvmnc *h;
	struct kvmnc_handle_info i = {.sz = sizeof(i)};
	int r;

	if (!info)
		return -EINVAL;
	r = kvmnc_struct_out_ok(info);
	if (r < 0)
		return r;
	r = kvmnc_handle_get(hd, &h);
	if (r < 0)
		return r;
	i.region_mechanism = h->region_mech;
	i.device_mechanism = h->device_mech;
	i.scope = h->scope;
	i.quirk_disabled = h->quirk_disabled;
	i.noncoherent_regions = h->nc.n;
	i.enabled_devices = h->devs.n;
	i.vm_quirks_mask = h->vm_quirks_mask;
	i.wbinvd_emulation = h->wbinvd_on;
	i.open_flags = h->open_flags;
	kvmnc_handle_put(h);
	kvmnc_struct_out(info, &i, sizeof(i));
	return 0;
}

KVMNC_API int kvmnc_get_features(struct kvmnc *hd, struct kvmnc_features *out)
{
	struct kvmnc *h;
	int r;

	if (!out)
		return -EINVAL;
	r = kvmnc_struct_out_ok(out);
	if (r < 0)
		return r;
	r = kvmnc_handle_get(hd, &h);
	if (r < 0)
		return r;
	kvmnc_struct_out(out, &h->host.feat, sizeof(h->host.feat));
	kvmnc_handle_put(h);
	return 0;
}
