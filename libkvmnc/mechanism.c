// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The one table of mechanisms: name, scope, whether it can serve device
 * models, where its answer and reason code live in struct kvmnc_features,
 * in order of preference (narrowest first). The probe's recommendation,
 * the handle's choice and the names all read it, so the order is written
 * once. The names of the reason codes (docs/reasons.tsv) live here too.
 */
#include <stddef.h>

#include "internal.h"

const struct kvmnc_mech_entry kvmnc_mechanisms[KVMNC_NMECH] = {
	{
		.id = KVMNC_MECH_NATIVE,
		.name = "native",
		.scope = KVMNC_SCOPE_SLOT, /* nothing is changed at all */
		.serves_devices = true,
		.status = offsetof(struct kvmnc_features, native),
		.reason = offsetof(struct kvmnc_features, native_reason),
	},
	{
		.id = KVMNC_MECH_MEMSLOT_FLAG,
		.name = "memslot_flag",
		.scope = KVMNC_SCOPE_SLOT,
		/* A device DMAs anywhere; the flag covers only the slots it is on. */
		.serves_devices = false,
		.status = offsetof(struct kvmnc_features, memslot_flag),
		.reason = offsetof(struct kvmnc_features, memslot_flag_reason),
	},
	{
		.id = KVMNC_MECH_VIRTIO_DEVICE,
		.name = "virtio_device",
		.scope = KVMNC_SCOPE_VM,
		.serves_devices = true,
		.status = offsetof(struct kvmnc_features, virtio_device),
		.reason = offsetof(struct kvmnc_features, virtio_device_reason),
	},
	{
		.id = KVMNC_MECH_GUEST_PAT_QUIRK,
		.name = "guest_pat_quirk",
		.scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
		.serves_devices = true,
		.status = offsetof(struct kvmnc_features, guest_pat_quirk),
		.reason = offsetof(struct kvmnc_features, guest_pat_quirk_reason),
	},
};

const struct kvmnc_mech_entry *kvmnc_mechanism_of(int id)
{
	for (size_t i = 0; i < KVMNC_NMECH; i++)
		if (kvmnc_mechanisms[i].id == id)
			return &kvmnc_mechanisms[i];
	return NULL;
}

const struct kvmnc_mech_status *kvmnc_mech_answer(const struct kvmnc_features *f,
						  const struct kvmnc_mech_entry *m)
{
	return (const void *)((const char *)f + m->status);
}

int kvmnc_recommend(const struct kvmnc_features *f)
{
	for (size_t i = 0; i < KVMNC_NMECH; i++)
		if (kvmnc_mech_answer(f, &kvmnc_mechanisms[i])->supported == 1)
			return kvmnc_mechanisms[i].id;
	return KVMNC_MECH_NONE;
}

KVMNC_API const char *kvmnc_reason_name(int reason)
{
	/* docs/reasons.tsv; unit: misc test_reason_table keeps the two equal. */
	static const char *const names[] = {
		[KVMNC_REASON_UNSET] = "unset",
		[KVMNC_REASON_SUPPORTED] = "supported",
		[KVMNC_REASON_COULD_NOT_TELL] = "could_not_tell",
		[KVMNC_REASON_KERNEL_LACKS] = "kernel_lacks",
		[KVMNC_REASON_ARCH] = "arch",
		[KVMNC_REASON_IGNORES_GUEST_PAT] = "ignores_guest_pat",
		[KVMNC_REASON_UNKNOWN_VENDOR] = "unknown_vendor",
		[KVMNC_REASON_NO_TDP] = "no_tdp",
		[KVMNC_REASON_NO_SELF_SNOOP] = "no_self_snoop",
		[KVMNC_REASON_NATIVE_ALREADY] = "native_already",
		[KVMNC_REASON_OTHER_MEANING] = "other_meaning",
		[KVMNC_REASON_VM_TYPE] = "vm_type",
		[KVMNC_REASON_UC_VRAM_DISPLAY] = "uc_vram_display",
	};

	if (reason < 0 || (size_t)reason >= ARRAY_SIZE(names))
		return NULL;
	return names[reason];
}

KVMNC_API const char *kvmnc_mechanism_name(int mechanism)
{
	const struct kvmnc_mech_entry *m = kvmnc_mechanism_of(mechanism);

	if (mechanism == KVMNC_MECH_NONE)
		return "none";
	return m ? m->name : NULL;
}
