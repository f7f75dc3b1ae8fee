//! `git` for the benchmarks, shared by `examples/bench_push.rs` and `benches/preview.rs`
//! (included with `#[path]`): a fixed identity, no signing, and no global or system
//! configuration of the machine running the bench.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};

/// Run `git -C dir args…`; its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .context("running git")?;
    ensure!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
