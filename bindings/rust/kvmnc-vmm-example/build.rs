// SPDX-License-Identifier: LGPL-2.1-or-later
//! Linked against a libkvmnc outside the system's paths (a Meson build
//! directory), the example runs without LD_LIBRARY_PATH: that directory
//! becomes its run path. A static build (KVMNC_STATIC=1) must have none:
//! glibc's static-pie start-up asserts that there is no DT_RUNPATH, and the
//! binary dies in _dl_relocate_static_pie() before main().
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_KVMNC_LIB_DIR");
    println!("cargo:rerun-if-env-changed=KVMNC_STATIC");
    let statik = std::env::var("KVMNC_STATIC").map_or(false, |v| v == "1");
    if let (Ok(dir), false) = (std::env::var("DEP_KVMNC_LIB_DIR"), statik) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
