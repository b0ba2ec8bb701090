// SPDX-License-Identifier: LGPL-2.1-or-later
/* kvmnc-probe: what this host offers for non-coherent DMA in KVM guests, and why. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <kvmnc.h>

enum { EXIT_USABLE = 0, EXIT_NONE = 1, EXIT_ERROR = 2 };

struct row {
	const char *name;
	const char *title;
	const struct kvmnc_mech_status *st;
	uint32_t code; /* enum kvmnc_reason */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: kvmnc-probe [--json] [--device PATH] [--vm-type N]\n"
		   "\n"
		   "Tell which mechanism this host's KVM offers to honor guest memory types\n"
		   "for non-coherent DMA, and why the others are missing.\n"
		   "\n"
		   "  -j, --json         one JSON object on stdout\n"
		   "  -d, --device PATH  KVM node to probe (default /dev/kvm)\n"
		   "  -t, --vm-type N    answer for a VM of type N (KVM_CREATE_VM's argument,\n"
		   "                     e.g. 5 for TDX), created for this and closed again\n"
		   "  -h, --help         this text\n"
		   "  -V, --version      library and tool version\n"
		   "\n"
		   "Exit status: 0 a mechanism is usable, 1 none is, 2 error.\n");
}

static const char *answer(int supported)
{
	return supported == 1 ? "yes" : supported == 0 ? "no" : "unknown";
}

static void json_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const char *probed_on(int where)
{
	switch (where) {
	case KVMNC_PROBED_SCRATCH_VM:
		return "scratch_vm";
	case KVMNC_PROBED_CALLER_VM:
		return "callers_vm";
	}
	return "nowhere";
}

static void print_json(const struct kvmnc_features *f, long vm_type, const struct row *rows,
		       size_t n)
{
	const char *rec = f->recommended ? kvmnc_mechanism_name(f->recommended) : NULL;

	printf("{\"kernel\": ");
	json_string(f->kernel_release);
	printf(", \"cpu_vendor\": ");
	json_string(f->cpu_vendor);
	printf(", \"self_snoop\": %s", f->self_snoop < 0 ? "null"
				       : f->self_snoop	 ? "true"
							 : "false");
	printf(", \"kvm_api_version\": %d", f->kvm_api_version);
	printf(", \"tdp\": %s", f->tdp < 0 ? "null" : f->tdp ? "true" : "false");
	printf(", \"quirks_mask\": %llu", (unsigned long long)f->quirks_mask);
	printf(", \"memslot_flag_cap\": %u", f->memslot_flag_cap);
	printf(", \"memslot_flag_evidence\": %u", f->memslot_flag_evidence);
	printf(", \"virtio_device_type\": %u", f->virtio_device_type);
	printf(", \"vm_types\": %u", f->vm_types);
	if (vm_type >= 0)
		printf(", \"vm_type\": %ld", vm_type);
	else
		printf(", \"vm_type\": null");
	printf(", \"vm_private_memory\": %s",
	       f->vm_flags & KVMNC_VM_PRIVATE_MEMORY ? "true" : "false");
	printf(", \"vm_protected_state\": %s",
	       f->vm_flags & KVMNC_VM_PROTECTED_STATE ? "true" : "false");
	printf(", \"address_spaces\": %u", f->address_spaces);
	printf(", \"memslots\": %u", f->memslots);
	printf(", \"probed_on\": ");
	json_string(probed_on(f->probed_on));
	printf(", \"mechanisms\": {");
	for (size_t i = 0; i < n; i++) {
		printf("%s", i ? ", " : "");
		json_string(rows[i].name);
		printf(": {\"supported\": %s, \"known\": %s, \"reason\": ",
		       rows[i].st->supported == 1 ? "true" : "false",
		       rows[i].st->supported >= 0 ? "true" : "false");
		json_string(rows[i].st->reason);
		/* Since 1.2: the reason as a code to branch on (docs/reasons.tsv). */
		printf(", \"code\": ");
		json_string(kvmnc_reason_name((int)rows[i].code));
		printf("}");
	}
	/* Since 1.3: not a mechanism, so beside "mechanisms", not in it. */
	printf("}, \"wbinvd_emulation\": {\"supported\": %s, \"known\": %s, \"reason\": ",
	       f->wbinvd_emulation.supported == 1 ? "true" : "false",
	       f->wbinvd_emulation.supported >= 0 ? "true" : "false");
	json_string(f->wbinvd_emulation.reason);
	printf(", \"code\": ");
	json_string(kvmnc_reason_name((int)f->wbinvd_emulation_reason));
	printf(", \"cap\": %u", f->wbinvd_emulation_cap);
	printf("}, \"recommended\": ");
	if (rec)
		json_string(rec);
	else
		printf("null");
	printf(", \"libkvmnc\": ");
	json_string(kvmnc_version());
	printf("}\n");
}

static void print_table(const char *dev, const struct kvmnc_features *f, long vm_type,
			const struct row *rows, size_t n)
{
	printf("KVM node:        %s\n", dev);
	printf("Kernel:          %s\n", f->kernel_release);
	printf("CPU vendor:      %s\n", f->cpu_vendor[0] ? f->cpu_vendor : "(not x86)");
	printf("Self-snoop:      %s\n", f->self_snoop < 0 ? "n/a" : f->self_snoop ? "yes" : "no");
	printf("KVM API version: %d\n", f->kvm_api_version);
	printf("EPT/NPT:         %s\n", f->tdp < 0 ? "unknown" : f->tdp ? "yes" : "no");
	printf("Quirks mask:     0x%llx\n", (unsigned long long)f->quirks_mask);
	printf("Flag capability: %u\n", f->memslot_flag_cap);
	printf("VIRTIO device:   type %u\n", f->virtio_device_type);
	printf("VM types:        0x%x\n", f->vm_types);
	if (vm_type >= 0)
		printf("This VM:         type %ld%s%s\n", vm_type,
		       f->vm_flags & KVMNC_VM_PRIVATE_MEMORY ? ", private memory" : "",
		       f->vm_flags & KVMNC_VM_PROTECTED_STATE ? ", protected state" : "");
	printf("Address spaces:  %u, memslot ids %u\n", f->address_spaces, f->memslots);
	printf("Trials ran on:   %s\n\n", probed_on(f->probed_on));
	printf("%-18s %-8s %s\n", "Mechanism", "Usable", "Why");
	for (size_t i = 0; i < n; i++)
		printf("%-18s %-8s %s\n", rows[i].title, answer(rows[i].st->supported),
		       rows[i].st->reason);
	printf("\nRecommended:     %s\n", f->recommended ? kvmnc_mechanism_name(f->recommended)
							 : "none (no mechanism is usable)");
	/* Not a mechanism: only on request (KVMNC_OPEN_WBINVD), at a cost to other tenants. */
	printf("WBINVD emulation on request: %s", answer(f->wbinvd_emulation.supported));
	if (f->wbinvd_emulation_cap)
		printf(" (capability %u)", f->wbinvd_emulation_cap);
	printf("\n  %s\n", f->wbinvd_emulation.reason);
}

/* The answer for a VM of @type: a handle on one made for it (the VM-type facts). */
static int probe_vm(const char *dev, unsigned long type, struct kvmnc_features *f)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .dev_path = dev, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE);
	struct kvmnc *h = NULL;
	int kvm, vm, r;

	kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return -errno;
	vm = ioctl(kvm, _IO(0xAE, 0x01), type); /* KVM_CREATE_VM */
	r = vm < 0 ? -errno : 0;
	close(kvm);
	if (r < 0) {
		fprintf(stderr, "kvmnc-probe: KVM_CREATE_VM(%lu): %s\n", type, strerror(-r));
		return r;
	}
	/* Scope VM_IRREVERSIBLE only widens what is chosen; kvmnc_open() changes nothing
	 * in the VM then unless the quirk is chosen, and this VM is closed at once. */
	r = kvmnc_open(vm, &o, &h);
	if (r == 0)
		r = kvmnc_get_features(h, f);
	kvmnc_close(h);
	close(vm);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},	   {"device", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},	   {"version", no_argument, NULL, 'V'},
		{"vm-type", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
	};
	KVMNC_OPTS(kvmnc_features, f);
	const char *dev = "/dev/kvm";
	int c, r, json = 0;
	long vm_type = -1;
	char *end;

	while ((c = getopt_long(argc, argv, "jd:t:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'd':
			dev = optarg;
			break;
		case 't':
			vm_type = strtol(optarg, &end, 0);
			if (*end || vm_type < 0 || vm_type > 0xffff) {
				fprintf(stderr, "kvmnc-probe: bad VM type '%s'\n", optarg);
				return EXIT_ERROR;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_USABLE;
		case 'V':
			printf("kvmnc-probe (libkvmnc) %s\n", kvmnc_version());
			return EXIT_USABLE;
		default:
			usage(stderr);
			return EXIT_ERROR;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmnc-probe: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_ERROR;
	}

	r = vm_type >= 0 ? probe_vm(dev, (unsigned long)vm_type, &f) : kvmnc_probe(dev, &f);
	if (r < 0) {
		const char *hint = "";

		if (r == -ENOENT)
			hint = " (is the kvm module loaded?)";
		else if (r == -EACCES || r == -EPERM)
			hint = " (run as root or join the group that owns it)";
		fprintf(stderr, "kvmnc-probe: %s: %s%s\n", dev, kvmnc_strerror(r), hint);
		return EXIT_ERROR;
	}

	const struct row rows[] = {
		{"virtio_device", "VIRTIO device", &f.virtio_device, f.virtio_device_reason},
		{"memslot_flag", "Memslot flag", &f.memslot_flag, f.memslot_flag_reason},
		{"guest_pat_quirk", "Guest-PAT quirk", &f.guest_pat_quirk,
		 f.guest_pat_quirk_reason},
		{"native", "Native", &f.native, f.native_reason},
	};
	if (json)
		print_json(&f, vm_type, rows, sizeof(rows) / sizeof(rows[0]));
	else
		print_table(dev, &f, vm_type, rows, sizeof(rows) / sizeof(rows[0]));
	return f.recommended ? EXIT_USABLE : EXIT_NONE;
}
