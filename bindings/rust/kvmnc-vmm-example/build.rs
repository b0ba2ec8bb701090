// SPDX-License-Identifier: LGPL-2.1-or-later
//! Linked against a libkvmnc outside the system's paths (a Meson build
//! directory), the example runs without LD_LIBRARY_PATH: that directory
//! becomes its run path. A static build (KVMNC_STATIC=1) must have none:
//! glibc's static-pie start-up asserts that there is no DT_RUNPATH, and the
//! binary dies in _dl_relocate_static_pie() before main().
//!
//! The kernel tier's rows (KVMNC_EXPECT) come from tests/live/live.h, the
//! one table the C live tests and the tier's runner read too, so that a row
//! added there needs nothing here.
use std::env;
use std::fmt::Write;
use std::path::PathBuf;

fn expectations() -> String {
    let live_h =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../../tests/live/live.h");
    println!("cargo:rerun-if-changed={}", live_h.display());
    let text =
        std::fs::read_to_string(&live_h).unwrap_or_else(|e| panic!("{}: {e}", live_h.display()));
    let mut rows = String::from("&[\n");
    // {"name", native, flag, device, quirk, KVMNC_MECH_..., module, ...},
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("{\"")) {
        let fields: Vec<&str> = line
            .trim_start_matches('{')
            .split(',')
            .map(str::trim)
            .collect();
        let mechanism = match fields.get(5).copied() {
            Some("KVMNC_MECH_NONE") => "None",
            Some("KVMNC_MECH_NATIVE") => "Some(Mechanism::Native)",
            Some("KVMNC_MECH_MEMSLOT_FLAG") => "Some(Mechanism::MemslotFlag)",
            Some("KVMNC_MECH_VIRTIO_DEVICE") => "Some(Mechanism::VirtioDevice)",
            Some("KVMNC_MECH_GUEST_PAT_QUIRK") => "Some(Mechanism::GuestPatQuirk)",
            other => panic!("{}: row {line}: mechanism {other:?}", live_h.display()),
        };
        writeln!(rows, "    ({}, {mechanism}),", fields[0]).unwrap();
    }
    rows + "]"
}

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_KVMNC_LIB_DIR");
    println!("cargo:rerun-if-env-changed=KVMNC_STATIC");
    let statik = env::var("KVMNC_STATIC").map_or(false, |v| v == "1");
    if let (Ok(dir), false) = (env::var("DEP_KVMNC_LIB_DIR"), statik) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("expect.rs");
    std::fs::write(out, expectations()).unwrap();
}
