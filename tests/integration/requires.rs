//! Tests that need a program this machine may lack: ZooKeeper (the HA tests), `openssl`
//! (test certificates), chromium and chromedriver (the dashboard), `git`. `make test-deps` installs them (Makefile,
//! `scripts/test-deps.sh`); no test installs anything.
//!
//! A test that finds one missing calls [`missing`] and returns:
//! - under CI (`CI` set to anything but `false` / `0`), that is a **failure** naming
//!   what is missing and how to install it: a test that cannot run must not pass;
//! - elsewhere it prints `SKIPPED <test>: <why>` on stdout and counts as passed, since
//!   neither libtest nor nextest can mark a running test as skipped.
//!
//! So that a local run cannot hide a skip in the captured output of a pass, one test here,
//! [`test_dependencies_are_installed`], lists every dependency with the tests that do not
//! run without it, and `.config/nextest.toml` shows its output at the end of every run
//! (`success-output = "final"`): `SKIPPED …` lines, or that everything is installed.
//! Under CI it fails when anything is missing.

use std::process::{Command, Stdio};

use super::zk::zookeeper_available;

/// Every dependency: its name, whether it is here, how to install it, and the tests
/// that cannot run without it.
fn dependencies() -> Vec<(&'static str, bool, &'static str, &'static [&'static str])> {
    vec![
        (
            "ZooKeeper (Debian's zookeeper package and java)",
            zookeeper_available(),
            "`make test-deps` (scripts/zookeeper.sh install, as root)",
            &["ha::* (except bad_instance_names_are_refused)", "ha_e2e::*"],
        ),
        (
            "openssl",
            runs("openssl", "version"),
            "`make test-deps`",
            &[
                "client::custom_ca_bundle_and_client_certificate",
                "reliability_security::tls_verification_is_on_by_default",
            ],
        ),
        (
            "chromium and chromedriver (Debian's chromium, chromium-driver)",
            super::ui::browser_available(),
            "`make test-deps` (scripts/browser.sh install, as root)",
            &["ui::*"],
        ),
        (
            "git",
            runs("git", "--version"),
            "your package manager (git is a prerequisite)",
            &["reliability_input::a_half_written_git_checkout_is_refused_and_writes_nothing"],
        ),
        (
            "sops and age-keygen",
            super::secrets::sops_tools().is_some(),
            "`make test-deps` (scripts/sops-tools.sh install)",
            &["secrets::files_the_sops_cli_makes_now_decrypt_partially_encrypted_and_after_key_rotation"],
        ),
    ]
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this run is CI's.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `test` cannot run because `what` is missing; `install` says how to get it. Fails the
/// test under CI; elsewhere prints the SKIPPED line (the caller then returns).
#[track_caller]
pub fn missing(test: &str, what: &str, install: &str) {
    let message = format!("{test}: {what}; install it with {install}");
    if under_ci() {
        panic!("CI is set and a test dependency is missing: {message}");
    }
    println!("SKIPPED {message}");
}

#[test]
fn test_dependencies_are_installed() {
    let mut absent = Vec::new();
    for (what, here, install, tests) in dependencies() {
        if here {
            println!("test dependency installed: {what}");
        } else {
            absent.push(format!("{what} is missing (install it with {install}): {}", tests.join(", ")));
        }
    }
    if under_ci() {
        assert!(absent.is_empty(), "CI is set and test dependencies are missing:\n{}", absent.join("\n"));
    }
    for line in absent {
        println!("SKIPPED {line}");
    }
}
