// SPDX-License-Identifier: LGPL-2.1-or-later
//! The memory type KVM put in each EPT entry, read back from the
//! kvmmmu:kvm_mmu_set_spte tracepoint as tests/live/live-memtype.c does:
//! bits 5:3 of the SPTE are the EPT memory type, bit 6 "ignore PAT". WB with
//! guest PAT honored is 0x6, WB|IPAT 0xe. Only Intel VMX with EPT has the
//! field, so only there is it read.

use std::fs;
use std::path::PathBuf;

/// WB, guest PAT honored.
pub const MT_WB: u8 = 0x6;
/// WB with "ignore PAT".
pub const MT_WB_IPAT: u8 = 0xe;

/// What the SPTEs of one guest range said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// No SPTE was made there.
    Nothing,
    /// Every SPTE had this memory type (bits 6:3).
    All(u8),
    /// SPTEs with different types.
    Mixed,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Nothing => f.write_str("no SPTE made"),
            Seen::All(m) => write!(f, "{m:#x}"),
            Seen::Mixed => f.write_str("SPTEs disagree"),
        }
    }
}

/// The memory types of the SPTEs in `trace` (the tracefs text) for guest
/// physical addresses `[gpa, gpa + len)`, and how many there were.
pub fn collect(trace: &str, gpa: u64, len: u64) -> (Seen, usize) {
    let mut seen = Seen::Nothing;
    let mut count = 0;
    for line in trace.lines() {
        let fields = match line.split_once("kvm_mmu_set_spte: gfn ") {
            Some((_, rest)) => rest,
            None => continue,
        };
        let mut it = fields.split_whitespace();
        let gfn = it.next().and_then(|g| u64::from_str_radix(g, 16).ok());
        let spte = match (it.next(), it.next()) {
            (Some("spte"), Some(s)) => u64::from_str_radix(s, 16).ok(),
            _ => None,
        };
        let (gfn, spte) = match (gfn, spte) {
            (Some(g), Some(s)) => (g, s),
            _ => continue,
        };
        let addr = gfn << 12;
        if addr < gpa || addr >= gpa + len {
            continue;
        }
        count += 1;
        let mt = ((spte >> 3) & 0xf) as u8;
        seen = match seen {
            Seen::Nothing => Seen::All(mt),
            Seen::All(m) if m == mt => seen,
            _ => Seen::Mixed,
        };
    }
    (seen, count)
}

/// A tracefs instance of this process with the SPTE event on; turned off
/// and removed on drop.
pub struct SpteTrace {
    inst: PathBuf,
}

impl SpteTrace {
    /// Starts the trace, or says why it cannot run here.
    pub fn start() -> Result<SpteTrace, String> {
        let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .map(PathBuf::from)
            .find(|r| r.join("events/kvmmmu/kvm_mmu_set_spte").exists())
            .ok_or_else(|| {
                "no tracefs with the kvmmmu:kvm_mmu_set_spte event (needs CONFIG_FTRACE, \
                 CONFIG_ENABLE_DEFAULT_TRACERS and tracefs mounted)"
                    .to_string()
            })?;
        let inst = root.join(format!(
            "instances/kvmnc-vmm-example.{}",
            std::process::id()
        ));
        fs::create_dir(&inst)
            .map_err(|e| format!("cannot create tracefs instance {}: {e}", inst.display()))?;
        let t = SpteTrace { inst };
        // Only this process's SPTEs: the vCPU runs on the main thread.
        fs::write(t.inst.join("set_event_pid"), std::process::id().to_string())
            .and_then(|_| fs::write(t.event_enable(), "1"))
            .map_err(|e| format!("cannot enable the event in {}: {e}", t.inst.display()))?;
        Ok(t)
    }

    fn event_enable(&self) -> PathBuf {
        self.inst.join("events/kvmmmu/kvm_mmu_set_spte/enable")
    }

    /// Forgets what was traced so far.
    pub fn clear(&self) {
        let _ = fs::write(self.inst.join("trace"), "");
    }

    /// What was traced since [`clear`](Self::clear).
    pub fn text(&self) -> String {
        fs::read_to_string(self.inst.join("trace")).unwrap_or_default()
    }
}

impl Drop for SpteTrace {
    fn drop(&mut self) {
        let _ = fs::write(self.event_enable(), "0");
        let _ = fs::remove_dir(&self.inst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_memory_type_per_range() {
        let trace = "\
# tracer: nop
 vmm-1  [000] .....  1.0: kvm_mmu_set_spte: gfn 1 spte 60000001234e77 (rwxu) level 1 at 100
 vmm-1  [000] .....  1.1: kvm_mmu_set_spte: gfn 2 spte 60000001235e77 (rwxu) level 1 at 101
 vmm-1  [000] .....  1.2: kvm_mmu_set_spte: gfn 10 spte 600000012360b7 (rwxu) level 1 at 102
 vmm-1  [000] .....  1.3: kvm_mmu_set_spte: gfn zz spte 1 (rwxu) level 1 at 103
";
        // 0x...e77: bits 6:3 are 0xe; 0x...0b7: 0x6.
        assert_eq!(collect(trace, 0, 0x10000), (Seen::All(MT_WB_IPAT), 2));
        assert_eq!(collect(trace, 0x10000, 0x10000), (Seen::All(MT_WB), 1));
        assert_eq!(collect(trace, 0x20000, 0x10000), (Seen::Nothing, 0));
        let mixed = format!("{trace} x-1 [0] 1.4: kvm_mmu_set_spte: gfn 3 spte 37 (r) level 1\n");
        assert_eq!(collect(&mixed, 0, 0x10000).0, Seen::Mixed);
    }
}
