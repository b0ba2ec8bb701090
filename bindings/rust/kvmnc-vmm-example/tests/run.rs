// SPDX-License-Identifier: LGPL-2.1-or-later
//! Runs the example VMM as a live test: exit 0 with a full TAP plan and no
//! failed line, or 77 with a skip plan (no usable /dev/kvm); and a host
//! without a KVM node must give the skip, not a failure.

use std::process::Command;

const VMM: &str = env!("CARGO_BIN_EXE_kvmnc-vmm-example");

fn run(envs: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let out = Command::new(VMM)
        .args(args)
        .env_remove("KVMNC_SKIP_EXIT")
        .envs(envs.iter().copied())
        .output()
        .expect("run the example VMM");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    (out.status.code().unwrap_or(-1), stdout)
}

fn consistent(code: i32, out: &str) {
    match code {
        0 => {
            let plan = out.lines().last().unwrap_or("");
            let n: usize = plan
                .strip_prefix("1..")
                .expect("a TAP plan")
                .parse()
                .unwrap();
            assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), n);
            assert!(!out.contains("not ok"));
        }
        77 => assert!(out.contains("1..0 # SKIP")),
        c => panic!("exit {c}:\n{out}"),
    }
}

#[test]
fn runs_or_skips_on_this_host() {
    for scope in ["slot", "vm", "vm-irreversible"] {
        let (code, out) = run(&[], &["--scope", scope]);
        consistent(code, &out);
    }
}

#[test]
fn no_kvm_node_is_a_skip() {
    let (code, out) = run(&[("KVMNC_DEVICE", "/nonexistent/kvm")], &[]);
    assert_eq!(code, 77);
    consistent(code, &out);
    let (code, _) = run(
        &[
            ("KVMNC_DEVICE", "/nonexistent/kvm"),
            ("KVMNC_SKIP_EXIT", "0"),
        ],
        &[],
    );
    assert_eq!(code, 0, "Meson's convention");
}

#[test]
fn bad_usage() {
    assert_eq!(run(&[], &["--scope", "wide"]).0, 2);
}
