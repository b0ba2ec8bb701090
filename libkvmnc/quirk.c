// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The guest-PAT quirk path: disabling KVM_X86_QUIRK_IGNORE_GUEST_PAT makes
 * KVM honor guest PAT for the whole VM for the rest of its life.
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
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_DISABLE_QUIRKS2,
		.args[0] = KVMNC_QUIRK_IGNORE_GUEST_PAT,
	};
	int r;

	if (h->quirk_disabled)
		return 0;
	if (!(h->vm_quirks_mask & KVMNC_QUIRK_IGNORE_GUEST_PAT))
		return -EOPNOTSUPP;
	r = SYS(ioctl, h->vm_fd, KVM_ENABLE_CAP, (unsigned long)&cap);
	if (r < 0) {
		pr_warn("disabling KVM_X86_QUIRK_IGNORE_GUEST_PAT failed: %d", r);
		return r;
	}
	h->quirk_disabled = true;
	pr_info("KVM_X86_QUIRK_IGNORE_GUEST_PAT disabled: guest PAT honored VM-wide");
	return 0;
}
