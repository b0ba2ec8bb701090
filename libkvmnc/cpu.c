// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The CPU as KVM sees it. KVM gates the guest-PAT quirk on the kernel's
 * view of the CPU (boot_cpu_has(X86_FEATURE_SELFSNOOP)), which clearcpuid=ss
 * changes and the CPUID instruction does not: self-snoop is read from the
 * flags in /proc/cpuinfo, and CPUID is only the fallback when that file
 * cannot be read. Everything goes through the seam.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cacheops.h"
#include "internal.h"

#define CPUINFO_MAX 16384

static int vendor_of(const char *v)
{
	if (!strcmp(v, "AuthenticAMD") || !strcmp(v, "HygonGenuine"))
		return KVMNC_VENDOR_AMD;
	if (!strcmp(v, "GenuineIntel") || !strcmp(v, "CentaurHauls") || !strcmp(v, "  Shanghai  "))
		return KVMNC_VENDOR_INTEL;
	return KVMNC_VENDOR_UNKNOWN;
}

/* 1 or 0 when the first "flags" line of /proc/cpuinfo has / lacks @flag; -errno. */
static int cpuinfo_flag(const char *flag)
{
	size_t flen = strlen(flag);
	const char *line, *end;
	char *buf;
	ssize_t n;
	int r = -ENOENT;

	/* A cold path (once per probe), and 16 KiB is too much for a VMM thread's stack. */
	buf = SYS(malloc, CPUINFO_MAX);
	if (!buf)
		return -ENOMEM;
	n = SYS(read_file, "/proc/cpuinfo", buf, CPUINFO_MAX);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	for (line = buf; *line && r < 0; line = end + (*end == '\n')) {
		end = strchrnul(line, '\n');
		if (strncmp(line, "flags", 5))
			continue;
		r = 0;
		for (const char *p = memchr(line, ':', (size_t)(end - line)); p && p < end;) {
			while (p < end && (*p == ' ' || *p == ':' || *p == '\t'))
				p++;
			if ((size_t)(end - p) >= flen && !strncmp(p, flag, flen) &&
			    (p + flen == end || p[flen] == ' ')) {
				r = 1;
				break;
			}
			p = memchr(p, ' ', (size_t)(end - p));
		}
	}
	free(buf);
	return r;
}

/* 1 or 0 for a bool module parameter, negative errno if it cannot be read. */
static int read_bool_param(const char *path)
{
	char buf[8];
	ssize_t n = SYS(read_file, path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1')
		return 1;
	if (buf[0] == 'N' || buf[0] == 'n' || buf[0] == '0')
		return 0;
	return -EINVAL;
}

void kvmnc_cpu_probe(struct kvmnc_cpu *c, bool read_paths)
{
	uint32_t r[4];
	int err;

	memset(c, 0, sizeof(*c));
	c->self_snoop = -1;
	c->vendor = KVMNC_VENDOR_NOT_X86;
	err = SYS(cpuid, 0, 0, r);
	if (err < 0) {
		if (err != -EOPNOTSUPP)
			c->cpuid_err = err;
		c->tdp = -EOPNOTSUPP;
		return;
	}

	/* The vendor string is EBX, EDX, ECX. */
	memcpy(c->vendor_str, &r[1], 4);
	memcpy(c->vendor_str + 4, &r[3], 4);
	memcpy(c->vendor_str + 8, &r[2], 4);
	c->vendor_str[12] = '\0';
	c->vendor = vendor_of(c->vendor_str);

	if (!read_paths) {
		/*
		 * KVMNC_OPEN_KVM_FD promises that no path is opened: what only
		 * /proc and /sys say is unknown (CPUID would be a guess that
		 * clearcpuid=ss makes wrong), unless the quirk mask settles it.
		 */
		c->no_paths = true;
		c->self_snoop_err = -ENODATA;
		c->tdp = -ENODATA;
		return;
	}
	err = cpuinfo_flag("ss");
	if (err >= 0) {
		c->self_snoop = err;
		c->self_snoop_kernel = true;
	} else if (err != -ENOENT) {
		/* CPUID may say yes where the kernel said no (clearcpuid=ss): do not guess. */
		c->self_snoop_err = err;
	} else if (SYS(cpuid, 1, 0, r) == 0) {
		/* No /proc (a sandbox): the instruction is the best guess left. */
		c->self_snoop = !!(r[3] & (1u << 27));
	}

	if (c->vendor == KVMNC_VENDOR_INTEL)
		c->tdp = read_bool_param("/sys/module/kvm_intel/parameters/ept");
	else if (c->vendor == KVMNC_VENDOR_AMD)
		c->tdp = read_bool_param("/sys/module/kvm_amd/parameters/npt");
	else
		c->tdp = -EOPNOTSUPP;
	/*
	 * A missing parameter means "not kvm_intel / kvm_amd" only where sysfs
	 * shows kvm.ko itself; a jail without /sys (Firecracker's jailer)
	 * cannot tell, and must not be read as "no".
	 */
	if (c->tdp == -ENOENT) {
		char buf[24];

		if (SYS(read_file, "/sys/module/kvm/parameters/halt_poll_ns", buf, sizeof(buf)) < 0)
			c->tdp = -ENODATA;
	}
}

const char *kvmnc_tdp_name(int vendor)
{
	return vendor == KVMNC_VENDOR_AMD ? "NPT" : "EPT";
}

const char *kvmnc_kvm_module(int vendor)
{
	return vendor == KVMNC_VENDOR_AMD ? "kvm_amd" : "kvm_intel";
}

void kvmnc_cpu_reset(void)
{
	/* The cache instructions were chosen from CPUID through the seam too. */
	kvmnc_cache_reselect();
}
