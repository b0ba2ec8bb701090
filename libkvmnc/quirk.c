// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The guest-PAT quirk path: disabling KVM_X86_QUIRK_IGNORE_GUEST_PAT makes
 * KVM honor guest PAT for the whole VM for the rest of its life. 6.12's
 * KVM_ENABLE_CAP only ORs the quirk into the VM's disabled set and zaps
 * nothing, so only mappings made afterwards honor guest PAT: callers disable
 * it when a handle opens, before memslots and vCPUs exist.
 */
#include <errno.h>

#include "compat-kvm.h"
#include "internal.h"

/*
 * The caller has checked that the scope allows it. Disabling twice is
 * harmless in the kernel, but the handle remembers so that it issues the
 * ioctl once.
 */
int kvmnc_quirk_disable(struct kvmnc *h)
{
	int r;

	if (h->quirk_disabled)
		return 0;
	if (!(h->vm_quirks_mask & KVMNC_QUIRK_IGNORE_GUEST_PAT))
		return -EOPNOTSUPP;
	r = kvmnc_kvm_disable_quirks(h->vm_fd, KVMNC_QUIRK_IGNORE_GUEST_PAT);
	if (r < 0) {
		hpr_warn(h, "disabling KVM_X86_QUIRK_IGNORE_GUEST_PAT failed: %d", r);
		return r;
	}
	h->quirk_disabled = true;
	hpr_info(h, "KVM_X86_QUIRK_IGNORE_GUEST_PAT disabled: guest PAT honored VM-wide");
	return 0;
}
