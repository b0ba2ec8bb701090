// SPDX-License-Identifier: LGPL-2.1-or-later
//! The hand-written declarations against `include/kvmnc.h`, by compiling the
//! header: a C program prints every struct's size and alignment, every
//! field's offset and size and every constant's value, and statically
//! asserts that each function has the signature the Rust declaration
//! implies. Names come from parsing the header (and `libkvmnc.map`), so a
//! field, constant or function added to C and not here fails too.
//!
//! rustc 1.63 has no `offset_of!`: offsets are the distance from a
//! `MaybeUninit`'s base to `addr_of!` of the field, which reads nothing.

use kvmnc_sys::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::mem::{align_of, size_of, MaybeUninit};
use std::path::PathBuf;
use std::process::Command;

const HEADER: &str = env!("KVMNC_SYS_HEADER");
const MAP: &str = env!("KVMNC_SYS_MAP");
const RUST_SRC: &str = include_str!("../src/lib.rs");

/// (struct, size, align, [(field, offset, size)]).
type Layout = (
    &'static str,
    usize,
    usize,
    Vec<(&'static str, usize, usize)>,
);

fn size_of_pointee<T>(_: *const T) -> usize {
    size_of::<T>()
}

/// (struct, size, align, [(field, offset, size)]) for each Rust struct.
macro_rules! layout {
    ($($t:ident { $($f:ident),* $(,)? })*) => {{
        let mut v: Vec<Layout> = Vec::new();
        $(
            let u = MaybeUninit::<$t>::uninit();
            let base = u.as_ptr();
            let mut fields = Vec::new();
            $(
                // SAFETY: addr_of! computes the address without reading it.
                let p = unsafe { std::ptr::addr_of!((*base).$f) };
                fields.push((stringify!($f), p as usize - base as usize, size_of_pointee(p)));
            )*
            v.push((stringify!($t), size_of::<$t>(), align_of::<$t>(), fields));
        )*
        v
    }};
}

macro_rules! consts {
    ($($c:ident),* $(,)?) => {
        vec![$((stringify!($c), $c as i128)),*]
    };
}

fn rust_layouts() -> Vec<Layout> {
    layout! {
        kvmnc_mech_status { supported, reason }
        kvmnc_features {
            sz, native, memslot_flag, virtio_device, guest_pat_quirk, recommended,
            kvm_api_version, kernel_release, cpu_vendor, self_snoop, tdp, quirks_mask,
            memslot_flag_cap, virtio_device_type, vm_types, vm_flags, address_spaces,
            memslots, probed_on, memslot_flag_evidence, native_reason, memslot_flag_reason,
            virtio_device_reason, guest_pat_quirk_reason, wbinvd_emulation,
            wbinvd_emulation_reason, wbinvd_emulation_cap,
        }
        kvmnc_open_opts { sz, scope, mechanism, dev_path, flags, kvm_fd }
        kvmnc_handle_info {
            sz, region_mechanism, device_mechanism, scope, quirk_disabled,
            noncoherent_regions, enabled_devices, vm_quirks_mask, wbinvd_emulation,
            open_flags,
        }
        kvmnc_region {
            sz, slot, flags, guest_phys_addr, memory_size, userspace_addr,
            guest_memfd_offset, guest_memfd, kvmnc_flags,
        }
        kvmnc_region_plan { sz, flags, add_flags, mechanism, vm_wide_step }
        kvmnc_range { slot, why, guest_phys_addr, memory_size, userspace_addr, mechanism }
        kvmnc_snapshot {
            sz, generation, ranges, count, range_sz, enabled_devices, noncoherent_regions,
            planned_regions, region_mechanism, device_mechanism, cache_maintenance,
            invalidate_insn, writeback_insn,
        }
        kvmnc_migration_advice { sz, action, flags, reason }
    }
}

fn rust_consts() -> Vec<(&'static str, i128)> {
    consts![
        KVMNC_VERSION_MAJOR,
        KVMNC_VERSION_MINOR,
        KVMNC_VERSION_PATCH,
        KVMNC_MECH_NONE,
        KVMNC_MECH_NATIVE,
        KVMNC_MECH_MEMSLOT_FLAG,
        KVMNC_MECH_VIRTIO_DEVICE,
        KVMNC_MECH_GUEST_PAT_QUIRK,
        KVMNC_SCOPE_SLOT,
        KVMNC_SCOPE_VM,
        KVMNC_SCOPE_VM_IRREVERSIBLE,
        KVMNC_REASON_MAX,
        KVMNC_REASON_UNSET,
        KVMNC_REASON_SUPPORTED,
        KVMNC_REASON_COULD_NOT_TELL,
        KVMNC_REASON_KERNEL_LACKS,
        KVMNC_REASON_ARCH,
        KVMNC_REASON_IGNORES_GUEST_PAT,
        KVMNC_REASON_UNKNOWN_VENDOR,
        KVMNC_REASON_NO_TDP,
        KVMNC_REASON_NO_SELF_SNOOP,
        KVMNC_REASON_NATIVE_ALREADY,
        KVMNC_REASON_OTHER_MEANING,
        KVMNC_REASON_VM_TYPE,
        KVMNC_REASON_UC_VRAM_DISPLAY,
        KVMNC_FLAG_EVIDENCE_NONE,
        KVMNC_FLAG_EVIDENCE_CAPABILITY,
        KVMNC_FLAG_EVIDENCE_ACCESS,
        KVMNC_VM_PRIVATE_MEMORY,
        KVMNC_VM_PROTECTED_STATE,
        KVMNC_PROBED_NOWHERE,
        KVMNC_PROBED_SCRATCH_VM,
        KVMNC_PROBED_CALLER_VM,
        KVMNC_OPEN_DEVICES,
        KVMNC_OPEN_KVM_FD,
        KVMNC_OPEN_WBINVD,
        KVMNC_OPEN_UC_VRAM_DISPLAY,
        KVMNC_MEM_LOG_DIRTY_PAGES,
        KVMNC_MEM_READONLY,
        KVMNC_MEM_GUEST_MEMFD,
        KVMNC_MEM_NON_COHERENT_DMA,
        KVMNC_REGION_NONCOHERENT,
        KVMNC_RANGE_REGION,
        KVMNC_RANGE_PLANNED,
        KVMNC_RANGE_DEVICE,
        KVMNC_RANGE_ANY,
        KVMNC_RANGE_ANY_SLOT,
        KVMNC_MIGRATION_NONE,
        KVMNC_MIGRATION_PRECOPY,
        KVMNC_MIGRATION_POSTCOPY,
        KVMNC_MIGRATE_PLAIN,
        KVMNC_MIGRATE_COHERENT,
        KVMNC_MIGRATE_BLOCK,
        KVMNC_ADVICE_RESEND,
        KVMNC_ADVICE_POSTCOPY_ORDER,
        KVMNC_LOG_ERROR,
        KVMNC_LOG_WARN,
        KVMNC_LOG_INFO,
        KVMNC_LOG_DEBUG,
    ]
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the header declares: struct fields, constants, functions.
struct Header {
    structs: BTreeMap<String, Vec<String>>,
    consts: BTreeSet<String>,
    functions: BTreeSet<String>,
}

fn ident_before(s: &str) -> String {
    let s = s.trim_end();
    let start = s
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    s[start..].to_string()
}

fn parse_header(text: &str) -> Header {
    let text = strip_comments(text);
    let mut h = Header {
        structs: BTreeMap::new(),
        consts: BTreeSet::new(),
        functions: BTreeSet::new(),
    };
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("#define KVMNC_") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after = &rest[name.len()..];
            // Function-like macros, the export macro and the include guard
            // are not constants.
            if !after.starts_with('(') && !after.trim().is_empty() && name != "API" {
                h.consts.insert(format!("KVMNC_{name}"));
            }
        } else if let Some(rest) = t.strip_prefix("struct ") {
            if let Some(name) = rest.strip_suffix(" {") {
                let mut fields = Vec::new();
                for l in lines.by_ref() {
                    let l = l.trim();
                    if l.starts_with('}') {
                        break;
                    }
                    if let Some(decl) = l.strip_suffix(';') {
                        let decl = decl.split('[').next().unwrap();
                        fields.push(ident_before(decl));
                    }
                }
                h.structs.insert(name.to_string(), fields);
            }
        } else if t.starts_with("enum ") && t.ends_with('{') {
            for l in lines.by_ref() {
                let l = l.trim();
                if l.starts_with('}') {
                    break;
                }
                if let Some(name) = l.split('=').next().filter(|n| n.starts_with("KVMNC_")) {
                    h.consts.insert(name.trim().to_string());
                }
            }
        } else if t.starts_with("KVMNC_API ") {
            let name = ident_before(t.split('(').next().unwrap());
            h.functions.insert(name);
        }
    }
    h
}

/// Names and C signatures of the Rust `extern "C"` block, from its source.
fn rust_functions() -> Vec<(String, String, Vec<String>)> {
    let src = strip_comments(RUST_SRC);
    let block = &src[src.find("extern \"C\" {").expect("extern block")..];
    let mut out = Vec::new();
    for decl in block.split("pub fn ").skip(1) {
        let decl = &decl[..decl.find(';').unwrap()];
        let name = decl[..decl.find('(').unwrap()].trim().to_string();
        let open = decl.find('(').unwrap();
        let close = decl.rfind(')').unwrap();
        let args: Vec<String> = decl[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| c_type(a.split_once(':').unwrap().1.trim()))
            .collect();
        let ret = decl[close + 1..]
            .trim()
            .strip_prefix("->")
            .map_or("void".to_string(), |r| c_type(r.trim()));
        out.push((name, ret, args));
    }
    out
}

/// The C spelling of a Rust FFI type as this crate writes them.
fn c_type(rust: &str) -> String {
    let rust = rust.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(inner) = rust.strip_prefix("*const ") {
        return format!("const {} *", c_type(inner)).replace("* *", "**");
    }
    if let Some(inner) = rust.strip_prefix("*mut ") {
        return format!("{} *", c_type(inner)).replace("* *", "**");
    }
    if rust == "Option<kvmnc_log_fn>" {
        return "kvmnc_log_fn".into();
    }
    match rust.as_str() {
        "c_int" | "i32" => "int",
        "c_uint" => "unsigned int",
        "u32" => "uint32_t",
        "u64" => "uint64_t",
        "usize" => "size_t",
        "c_char" => "char",
        "c_void" => "void",
        t if t.starts_with("kvmnc") => return format!("struct {t}"),
        t => panic!("no C spelling for Rust type {t}"),
    }
    .into()
}

fn compile_and_run(c: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("kvmnc-sys-header.c");
    let exe = dir.join("kvmnc-sys-header");
    std::fs::write(&src, c).unwrap();
    let include = PathBuf::from(HEADER).parent().unwrap().to_path_buf();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{cc}: {e}"));
    assert!(
        out.status.success(),
        "{cc} refused the generated check (a signature differs?):\n{}\n--- program:\n{c}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    String::from_utf8(run.stdout).unwrap()
}

#[test]
fn header_and_declarations_agree() {
    if HEADER.is_empty() {
        // Only where neither the tree nor pkg-config has the header: a
        // packaged crate built against a library without its -dev files.
        eprintln!("SKIP: kvmnc.h not found (set KVMNC_INCLUDE_DIR)");
        return;
    }
    let header = parse_header(&std::fs::read_to_string(HEADER).unwrap());
    let layouts = rust_layouts();
    let consts = rust_consts();
    let functions = rust_functions();
    let mut problems = Vec::new();

    // Every C struct but the opaque handle is declared with the same fields.
    let rust_structs: BTreeSet<&str> = layouts.iter().map(|l| l.0).collect();
    let c_structs: BTreeSet<&str> = header.structs.keys().map(String::as_str).collect();
    if rust_structs != c_structs {
        problems.push(format!(
            "structs: header {c_structs:?}, Rust {rust_structs:?}"
        ));
    }
    for (name, _, _, fields) in &layouts {
        let rust: Vec<&str> = fields.iter().map(|f| f.0).collect();
        let c: Vec<&str> = header
            .structs
            .get(*name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if rust != c {
            problems.push(format!("{name}: header fields {c:?}, Rust {rust:?}"));
        }
        // The field list of the source itself, not only the test's table.
        let decl = format!("pub struct {name} {{");
        let body = RUST_SRC.split(&decl).nth(1).expect("struct in lib.rs");
        let src_fields: Vec<String> = body[..body.find('}').unwrap()]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub "))
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect();
        if src_fields != rust {
            problems.push(format!(
                "{name}: lib.rs fields {src_fields:?}, table {rust:?}"
            ));
        }
    }

    let c_consts: BTreeSet<&str> = header.consts.iter().map(String::as_str).collect();
    let rust_const_names: BTreeSet<&str> = consts.iter().map(|c| c.0).collect();
    if c_consts != rust_const_names {
        problems.push(format!(
            "constants only in the header: {:?}; only in Rust: {:?}",
            c_consts.difference(&rust_const_names).collect::<Vec<_>>(),
            rust_const_names.difference(&c_consts).collect::<Vec<_>>()
        ));
    }
    let src_consts: BTreeSet<&str> = RUST_SRC
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    if src_consts != rust_const_names {
        problems.push(format!(
            "lib.rs constants {src_consts:?} differ from the table"
        ));
    }

    let rust_fns: BTreeSet<&str> = functions.iter().map(|f| f.0.as_str()).collect();
    let c_fns: BTreeSet<&str> = header.functions.iter().map(String::as_str).collect();
    if rust_fns != c_fns {
        problems.push(format!("functions: header {c_fns:?}, Rust {rust_fns:?}"));
    }
    if MAP.is_empty() {
        eprintln!("note: libkvmnc.map not in this tree; checked the header's functions only");
    } else {
        let map = strip_comments(&std::fs::read_to_string(MAP).unwrap());
        let exported: BTreeSet<&str> = map
            .lines()
            .filter_map(|l| l.trim().strip_suffix(';'))
            .filter(|s| s.starts_with("kvmnc_"))
            .collect();
        if exported != rust_fns {
            problems.push(format!(
                "libkvmnc.map exports {:?} not declared; declared {:?} not exported",
                exported.difference(&rust_fns).collect::<Vec<_>>(),
                rust_fns.difference(&exported).collect::<Vec<_>>()
            ));
        }
    }

    // The C side: one line per fact, compared with Rust's below.
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include <kvmnc.h>\n");
    for (name, ret, args) in &functions {
        let args = if args.is_empty() {
            "void".into()
        } else {
            args.join(", ")
        };
        writeln!(
            c,
            "_Static_assert(__builtin_types_compatible_p(__typeof__(&{name}), {ret} (*)({args})), \
             \"{name}: the Rust declaration is {ret} {name}({args})\");"
        )
        .unwrap();
    }
    c += "int main(void)\n{\n";
    for (name, fields) in &header.structs {
        writeln!(
            c,
            "\tprintf(\"S {name} %zu %zu\\n\", sizeof(struct {name}), _Alignof(struct {name}));"
        )
        .unwrap();
        for f in fields {
            writeln!(
                c,
                "\tprintf(\"F {name}.{f} %zu %zu\\n\", offsetof(struct {name}, {f}), \
                 sizeof(((struct {name} *)0)->{f}));"
            )
            .unwrap();
        }
    }
    for k in &header.consts {
        writeln!(c, "\tprintf(\"C {k} %lld\\n\", (long long)({k}));").unwrap();
    }
    c += "\treturn 0;\n}\n";
    let facts = compile_and_run(&c);

    let mut rust_facts = BTreeSet::new();
    for (name, size, align, fields) in &layouts {
        rust_facts.insert(format!("S {name} {size} {align}"));
        for (f, off, sz) in fields {
            rust_facts.insert(format!("F {name}.{f} {off} {sz}"));
        }
    }
    for (k, v) in &consts {
        rust_facts.insert(format!("C {k} {v}"));
    }
    let c_facts: BTreeSet<String> = facts.lines().map(str::to_string).collect();
    for d in c_facts.symmetric_difference(&rust_facts) {
        let side = if c_facts.contains(d) { "C   " } else { "Rust" };
        problems.push(format!("{side}: {d}"));
    }
    println!(
        "checked {} structs, {} fields, {} constants, {} functions against {HEADER}",
        layouts.len(),
        layouts.iter().map(|l| l.3.len()).sum::<usize>(),
        consts.len(),
        functions.len()
    );
    assert!(
        problems.is_empty(),
        "header and declarations disagree:\n{}",
        problems.join("\n")
    );
}

/// The checker itself: a header that differs must be caught.
#[test]
fn checker_sees_a_difference() {
    let h = parse_header(
        "struct kvmnc_x {\n\tsize_t sz;\n\tchar why[4]; /* a, b */\n};\n\
         #define KVMNC_FOO (1u << 2)\n#define KVMNC_BAR(x) x\n\
         enum e {\n\tKVMNC_E_A = 0,\n\tKVMNC_E_B = 1,\n};\n\
         KVMNC_API int kvmnc_f(int a,\n\t\tint b);\n",
    );
    assert_eq!(h.structs["kvmnc_x"], ["sz", "why"]);
    assert_eq!(
        h.consts.iter().collect::<Vec<_>>(),
        ["KVMNC_E_A", "KVMNC_E_B", "KVMNC_FOO"]
    );
    assert_eq!(h.functions.iter().collect::<Vec<_>>(), ["kvmnc_f"]);
    assert_eq!(c_type("*mut *mut kvmnc"), "struct kvmnc **");
    assert_eq!(c_type("*const c_char"), "const char *");
    assert_eq!(c_type("*const kvmnc_region"), "const struct kvmnc_region *");
}
