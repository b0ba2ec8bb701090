// SPDX-License-Identifier: LGPL-2.1-or-later
/* kvmnc-probe: what this host offers for non-coherent DMA in KVM guests, and why. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmnc.h>

enum { EXIT_USABLE = 0, EXIT_NONE = 1, EXIT_ERROR = 2 };

struct row {
	const char *name;
	const char *title;
	const struct kvmnc_mech_status *st;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: kvmnc-probe [--json] [--device PATH]\n"
		   "\n"
		   "Tell which mechanism this host's KVM offers to honor guest memory types\n"
		   "for non-coherent DMA, and why the others are missing.\n"
		   "\n"
		   "  -j, --json         one JSON object on stdout\n"
		   "  -d, --device PATH  KVM node to probe (default /dev/kvm)\n"
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

static void print_json(const struct kvmnc_features *f, const struct row *rows, size_t n)
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
	printf(", \"mechanisms\": {");
	for (size_t i = 0; i < n; i++) {
		printf("%s", i ? ", " : "");
		json_string(rows[i].name);
		printf(": {\"supported\": %s, \"known\": %s, \"reason\": ",
		       rows[i].st->supported == 1 ? "true" : "false",
		       rows[i].st->supported >= 0 ? "true" : "false");
		json_string(rows[i].st->reason);
		printf("}");
	}
	printf("}, \"recommended\": ");
	if (rec)
		json_string(rec);
	else
		printf("null");
	printf(", \"libkvmnc\": ");
	json_string(kvmnc_version());
	printf("}\n");
}

static void print_table(const char *dev, const struct kvmnc_features *f, const struct row *rows,
			size_t n)
{
	printf("KVM node:        %s\n", dev);
	printf("Kernel:          %s\n", f->kernel_release);
	printf("CPU vendor:      %s\n", f->cpu_vendor[0] ? f->cpu_vendor : "(not x86)");
	printf("Self-snoop:      %s\n", f->self_snoop < 0 ? "n/a" : f->self_snoop ? "yes" : "no");
	printf("KVM API version: %d\n", f->kvm_api_version);
	printf("EPT/NPT:         %s\n", f->tdp < 0 ? "unknown" : f->tdp ? "yes" : "no");
	printf("Quirks mask:     0x%llx\n\n", (unsigned long long)f->quirks_mask);
	printf("%-18s %-8s %s\n", "Mechanism", "Usable", "Why");
	for (size_t i = 0; i < n; i++)
		printf("%-18s %-8s %s\n", rows[i].title, answer(rows[i].st->supported),
		       rows[i].st->reason);
	printf("\nRecommended:     %s\n", f->recommended ? kvmnc_mechanism_name(f->recommended)
							 : "none (no mechanism is usable)");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"device", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	KVMNC_OPTS(kvmnc_features, f, .recommended = 0);
	const char *dev = "/dev/kvm";
	int c, r, json = 0;

	while ((c = getopt_long(argc, argv, "jd:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'd':
			dev = optarg;
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

	r = kvmnc_probe(dev, &f);
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
		{"virtio_device", "VIRTIO device", &f.virtio_device},
		{"memslot_flag", "Memslot flag", &f.memslot_flag},
		{"guest_pat_quirk", "Guest-PAT quirk", &f.guest_pat_quirk},
		{"native", "Native", &f.native},
	};
	if (json)
		print_json(&f, rows, sizeof(rows) / sizeof(rows[0]));
	else
		print_table(dev, &f, rows, sizeof(rows) / sizeof(rows[0]));
	return f.recommended ? EXIT_USABLE : EXIT_NONE;
}
