// SPDX-License-Identifier: LGPL-2.1-or-later
/* The device path on the real kernel: enable, idempotence, many, disable, close. */
#include "../../libkvmnc/compat-kvm.h"
#include "live.h"

int main(void)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc_features f = {.sz = sizeof(f)};
	int kvm = t_kvm_fd(), vm, fds, r;
	struct kvmnc *h = NULL;
	static bool had[1024];

	if (kvmnc_probe(NULL, &f) < 0)
		return T_EXIT_FAIL;
	vm = t_create_vm(kvm);
	fds = t_count_fds();
	for (int fd = 0; fd < 1024; fd++)
		had[fd] = fcntl(fd, F_GETFD) >= 0;
	if (f.virtio_device.supported == 1)
		o.mechanism = KVMNC_MECH_VIRTIO_DEVICE;
	T_EQ(kvmnc_open(vm, &o, &h), 0, "open");
	kvmnc_get_info(h, &info);
	printf("# devices use %s\n", kvmnc_mechanism_name(info.device_mechanism));

	r = kvmnc_device_enable(h, 0x10);
	if (info.device_mechanism == KVMNC_MECH_NONE) {
		T_EQ(r, -EOPNOTSUPP, "no VM-wide mechanism: enable refused");
		T_EQ(t_count_fds(), fds, "refusal leaves no fd");
		T_EQ(kvmnc_is_noncoherent(h), 0, "nothing non-coherent");
	} else {
		T_EQ(r, 0, "enable device 0x10");
		T_EQ(kvmnc_device_enable(h, 0x10), 0, "enable again is a no-op");
		int per_dev = info.device_mechanism == KVMNC_MECH_VIRTIO_DEVICE ? 1 : 0;

		T_EQ(t_count_fds(), fds + per_dev, "one KVM device per device model");
		for (uint32_t i = 0; i < 16; i++)
			T_EQ(kvmnc_device_enable(h, 0x100 + i), 0, "enable one of 16 more");
		T_EQ(t_count_fds(), fds + 17 * per_dev, "17 device models, 17 KVM devices");
		T_EQ(kvmnc_is_noncoherent(h), 1, "VM is non-coherent");
		int bad = 0;

		for (int fd = 0; fd < 1024; fd++) {
			int fl = fcntl(fd, F_GETFD);

			if (fl >= 0 && !had[fd] && !(fl & FD_CLOEXEC))
				bad++;
		}
		T_EQ(bad, 0, "fds the library opened without O_CLOEXEC");
		T_EQ(kvmnc_device_disable(h, 0x10), 0, "disable device 0x10");
		T_EQ(kvmnc_device_disable(h, 0x10), -ENOENT, "disable again: not enabled");
		T_EQ(t_count_fds(), fds + 16 * per_dev, "its KVM device is closed");
	}
	T_EQ(kvmnc_close(h), 0, "close releases the rest");
	T_EQ(t_count_fds(), fds, "no fd left behind");
	close(vm);
	close(kvm);
	return t_done();
}
