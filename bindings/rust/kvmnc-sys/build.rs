// SPDX-License-Identifier: LGPL-2.1-or-later
//! Finds libkvmnc without any build-dependency crate (no registry is
//! reachable where this builds), in this order:
//!
//! 1. `KVMNC_LIB_DIR`: a directory holding `libkvmnc.so` (or `libkvmnc.a`
//!    with `KVMNC_STATIC=1`), e.g. a Meson build's `libkvmnc/`;
//! 2. `pkg-config libkvmnc` (the installed library, `PKG_CONFIG_PATH` honored);
//! 3. the linker's default path.
//!
//! The header the layout test compiles comes from `KVMNC_INCLUDE_DIR`, else
//! this source tree's `include/` when the crate sits in it, else pkg-config.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn pkg_config(args: &[&str]) -> Option<String> {
    let out = Command::new(env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into()))
        .args(args)
        .arg("libkvmnc")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    for var in [
        "KVMNC_LIB_DIR",
        "KVMNC_STATIC",
        "KVMNC_INCLUDE_DIR",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let statik = env::var("KVMNC_STATIC").map(|v| v == "1").unwrap_or(false);
    let mut lib_dir = env::var("KVMNC_LIB_DIR").ok().filter(|d| !d.is_empty());
    if lib_dir.is_none() {
        // Only -L directories matter: the library name is ours to give, and a
        // pkg-config that lists none means the linker's default path.
        lib_dir = pkg_config(&["--libs-only-L"]).and_then(|l| {
            l.split_whitespace()
                .find_map(|a| a.strip_prefix("-L").map(str::to_string))
        });
        if lib_dir.is_none() && pkg_config(&["--exists"]).is_none() {
            println!(
                "cargo:warning=libkvmnc: neither KVMNC_LIB_DIR nor pkg-config libkvmnc; \
                 trying the linker's default path"
            );
        }
    }
    if let Some(dir) = &lib_dir {
        println!("cargo:rustc-link-search=native={dir}");
        // DEP_KVMNC_LIB_DIR for the crates that link us: they add it as a
        // run path to their test binaries, which then run without
        // LD_LIBRARY_PATH.
        println!("cargo:lib_dir={dir}");
        // This package's own tests and doctests: the same, here.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    if statik {
        println!("cargo:rustc-link-lib=static=kvmnc");
    } else {
        println!("cargo:rustc-link-lib=dylib=kvmnc");
    }

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let tree = manifest.join("../../..");
    let include = env::var("KVMNC_INCLUDE_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let t = tree.join("include");
            t.join("kvmnc.h").is_file().then_some(t)
        })
        .or_else(|| pkg_config(&["--variable=includedir"]).map(PathBuf::from));
    let header = include.as_ref().map(|d| d.join("kvmnc.h"));
    let map = tree.join("libkvmnc/libkvmnc.map");
    let show = |p: Option<&Path>| {
        p.filter(|p| p.is_file())
            .map(|p| p.canonicalize().unwrap().display().to_string())
            .unwrap_or_default()
    };
    // The layout test (tests/header.rs) reads these at compile time.
    let header = show(header.as_deref());
    if !header.is_empty() {
        println!("cargo:rerun-if-changed={header}");
        println!("cargo:include={}", include.unwrap().display());
    }
    println!("cargo:rustc-env=KVMNC_SYS_HEADER={header}");
    println!("cargo:rustc-env=KVMNC_SYS_MAP={}", show(Some(&map)));
}
