// SPDX-License-Identifier: LGPL-2.1-or-later
//! Raw KVM for the live tests and the example VMM, without the libc or
//! kvm-ioctls crates (no registry here): the handful of ioctls a VMM issues
//! itself, on plain fds, the way crosvm's `hypervisor/src/kvm` does.
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::os::raw::{c_int, c_long, c_ulong, c_void};
use std::os::unix::io::{AsRawFd, FromRawFd};

extern "C" {
    fn ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: c_long,
    ) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn syscall(nr: c_long, ...) -> c_long;
    fn getpid() -> c_int;
}

const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 1;
const MAP_PRIVATE: c_int = 2;
const MAP_ANONYMOUS: c_int = 0x20;

#[cfg(target_arch = "x86_64")]
const SYS_KCMP: c_long = 312;
// The generic table (arm64, riscv64).
#[cfg(not(target_arch = "x86_64"))]
const SYS_KCMP: c_long = 272;
const KCMP_FILE: c_long = 0;

/// kcmp(KCMP_FILE) on two fds of this process: whether they are one open
/// file, or the error (ENOSYS on a kernel without CONFIG_KCMP, EPERM
/// under a filter). libkvmnc tells another fd of a VM that has a handle
/// only this way; all VM fds share one anonymous inode.
pub fn kcmp_same_file(a: &File, b: &File) -> io::Result<bool> {
    // SAFETY: kcmp reads nothing of this process's memory.
    let r = unsafe {
        let pid = c_long::from(getpid());
        syscall(
            SYS_KCMP,
            pid,
            pid,
            KCMP_FILE,
            c_long::from(a.as_raw_fd()),
            c_long::from(b.as_raw_fd()),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r == 0)
    }
}

const fn io(nr: c_ulong) -> c_ulong {
    (0xae << 8) | nr
}
const fn iow(nr: c_ulong, size: usize) -> c_ulong {
    (1 << 30) | ((size as c_ulong) << 16) | (0xae << 8) | nr
}
const fn ior(nr: c_ulong, size: usize) -> c_ulong {
    (2 << 30) | ((size as c_ulong) << 16) | (0xae << 8) | nr
}

pub const KVM_GET_API_VERSION: c_ulong = io(0x00);
pub const KVM_CREATE_VM: c_ulong = io(0x01);
pub const KVM_CHECK_EXTENSION: c_ulong = io(0x03);
pub const KVM_GET_VCPU_MMAP_SIZE: c_ulong = io(0x04);
pub const KVM_CREATE_VCPU: c_ulong = io(0x41);
pub const KVM_SET_TSS_ADDR: c_ulong = io(0x47);
pub const KVM_RUN: c_ulong = io(0x80);
pub const KVM_SET_USER_MEMORY_REGION: c_ulong = iow(0x46, 32);
pub const KVM_SET_USER_MEMORY_REGION2: c_ulong = iow(0x49, 160);
// struct kvm_regs is 18 u64; struct kvm_sregs 312 bytes (8 segments, 2
// descriptor tables, 7 control registers, the interrupt bitmap).
pub const KVM_GET_REGS: c_ulong = ior(0x81, 144);
pub const KVM_SET_REGS: c_ulong = iow(0x82, 144);
pub const KVM_GET_SREGS: c_ulong = ior(0x83, 312);
pub const KVM_SET_SREGS: c_ulong = iow(0x84, 312);

pub const KVM_CAP_USER_MEMORY2: c_ulong = 231;
pub const KVM_EXIT_HLT: u32 = 5;
pub const KVM_EXIT_SHUTDOWN: u32 = 8;
pub const KVM_EXIT_FAIL_ENTRY: u32 = 9;
pub const KVM_EXIT_INTERNAL_ERROR: u32 = 17;

fn check(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The KVM node: `$KVMNC_DEVICE`, as the C live tests take it, else `/dev/kvm`.
pub fn kvm_path() -> String {
    std::env::var("KVMNC_DEVICE").unwrap_or_else(|_| "/dev/kvm".into())
}

/// The KVM node, read-write, close-on-exec.
pub fn open_kvm() -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(kvm_path())
}

/// The VMM's own `KVM_CREATE_VM` (type 0).
pub fn create_vm(kvm: &File) -> io::Result<File> {
    // SAFETY: an ioctl without a pointer argument; the result is a new fd
    // that only the returned File owns.
    let fd = check(unsafe { ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0 as c_ulong) })?;
    // SAFETY: fd is new and owned by no one else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `KVM_CHECK_EXTENSION` on a system or VM fd.
pub fn check_extension(fd: &File, cap: c_ulong) -> i32 {
    // SAFETY: no pointer argument.
    unsafe { ioctl(fd.as_raw_fd(), KVM_CHECK_EXTENSION, cap) }
}

#[repr(C)]
struct UserspaceMemoryRegion {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
}

#[repr(C)]
struct UserspaceMemoryRegion2 {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
    guest_memfd_offset: u64,
    guest_memfd: u32,
    pad1: u32,
    pad2: [u64; 14],
}

/// The VMM's own memslot ioctl: `KVM_SET_USER_MEMORY_REGION2` where the
/// kernel has it (6.8+), else the v1 ioctl. Returns the errno on failure,
/// as a plan's `complete()` takes it.
///
/// # Safety
///
/// The host memory must stay mapped while the slot exists.
pub unsafe fn set_user_memory_region(
    vm: &File,
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
) -> Result<(), i32> {
    let r = if check_extension(vm, KVM_CAP_USER_MEMORY2) > 0 {
        let m = UserspaceMemoryRegion2 {
            slot,
            flags,
            guest_phys_addr,
            memory_size,
            userspace_addr,
            guest_memfd_offset: 0,
            guest_memfd: 0,
            pad1: 0,
            pad2: [0; 14],
        };
        ioctl(
            vm.as_raw_fd(),
            KVM_SET_USER_MEMORY_REGION2,
            &m as *const UserspaceMemoryRegion2,
        )
    } else {
        let m = UserspaceMemoryRegion {
            slot,
            flags,
            guest_phys_addr,
            memory_size,
            userspace_addr,
        };
        ioctl(
            vm.as_raw_fd(),
            KVM_SET_USER_MEMORY_REGION,
            &m as *const UserspaceMemoryRegion,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(5))
    } else {
        Ok(())
    }
}

/// Anonymous guest memory, unmapped on drop.
pub struct GuestMem {
    ptr: *mut u8,
    len: usize,
}

impl GuestMem {
    pub fn new(len: usize) -> io::Result<GuestMem> {
        // SAFETY: a fresh private anonymous mapping.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(GuestMem { ptr: p.cast(), len })
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The memory as a slice. The guest may write it while a vCPU runs;
    /// these tests and the example only look between runs.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: mapped for len bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: mapped for len bytes until drop, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for GuestMem {
    fn drop(&mut self) {
        // SAFETY: our mapping, unmapped once.
        unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// One vCPU in real mode from `rip` (CS base 0) until its first exit that is
/// not an interrupted run: the exit reason.
pub fn run_real_mode(kvm: &File, vm: &File, rip: u64) -> io::Result<u32> {
    // SAFETY: each ioctl gets a buffer of the size its number encodes; the
    // vCPU fd is owned by `vcpu`, the run area unmapped before return.
    unsafe {
        // Intel needs a TSS address before the first run (it is harmless on AMD).
        ioctl(vm.as_raw_fd(), KVM_SET_TSS_ADDR, 0xfffb_d000 as c_ulong);
        let vcpu = File::from_raw_fd(check(ioctl(vm.as_raw_fd(), KVM_CREATE_VCPU, 0 as c_ulong))?);
        let size = check(ioctl(kvm.as_raw_fd(), KVM_GET_VCPU_MMAP_SIZE, 0 as c_ulong))? as usize;
        let mut sregs = [0u8; 312];
        check(ioctl(vcpu.as_raw_fd(), KVM_GET_SREGS, sregs.as_mut_ptr()))?;
        // cs is the first kvm_segment: base (u64) at 0, selector (u16) at 12.
        sregs[0..8].copy_from_slice(&0u64.to_ne_bytes());
        sregs[12..14].copy_from_slice(&0u16.to_ne_bytes());
        check(ioctl(vcpu.as_raw_fd(), KVM_SET_SREGS, sregs.as_ptr()))?;
        let mut regs = [0u64; 18];
        regs[16] = rip; // rip follows the 16 general registers
        regs[17] = 2; // rflags: bit 1 is reserved, always set
        check(ioctl(vcpu.as_raw_fd(), KVM_SET_REGS, regs.as_ptr()))?;
        let run = mmap(
            std::ptr::null_mut(),
            size,
            PROT_READ | PROT_WRITE,
            MAP_SHARED,
            vcpu.as_raw_fd(),
            0,
        );
        if run as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let result = loop {
            if ioctl(vcpu.as_raw_fd(), KVM_RUN, 0 as c_ulong) < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            // kvm_run: two u8 and six bytes of padding, then exit_reason.
            break Ok(std::ptr::read_volatile(
                run.cast::<u8>().add(8).cast::<u32>(),
            ));
        };
        munmap(run, size);
        result
    }
}

/// Open fds of this process (/proc/self/fd, minus the directory's own).
pub fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() - 1)
        .unwrap_or(0)
}
