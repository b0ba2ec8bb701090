// SPDX-License-Identifier: LGPL-2.1-or-later
//! Test binaries find the libkvmnc that kvmnc-sys linked (a Meson build
//! directory, say) without LD_LIBRARY_PATH: the directory becomes their run
//! path. Only this package's tests, examples and benches get it; a VMM that
//! depends on the crate decides its own run path.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_KVMNC_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_KVMNC_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
