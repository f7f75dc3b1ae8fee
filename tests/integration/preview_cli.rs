//! Exit codes a CI job can trust, for every subcommand (a usage error is 1, never
//! clap's 2, which `diff` means as "changes"), and the CI recipes of examples/ci/: the
//! preview step of each is run as written on a real local repository.

use std::path::Path;
use std::process::Command;

use super::preview::{Repo, git, mesosync};

/// The subcommands `mesosync --help` lists (so a new one is covered without editing
/// this test).
fn subcommands() -> Vec<String> {
    let run = mesosync(Path::new("."), &["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    let commands: Vec<String> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 8 && commands.iter().any(|c| c == "diff"), "{commands:?}");
    commands
}

#[test]
fn every_subcommand_exits_1_on_a_usage_error_and_0_for_help() {
    let here = Path::new(".");
    for sub in subcommands() {
        let run = mesosync(here, &[&sub, "--no-such-flag"]);
        assert_eq!(run.code, 1, "`mesosync {sub} --no-such-flag`: {run:?}");
        assert!(run.stderr.contains("--no-such-flag"), "clap's message is kept: {}", run.stderr);
        let run = mesosync(here, &[&sub, "--help"]);
        assert_eq!(run.code, 0, "`mesosync {sub} --help`: {run:?}");
        assert!(run.stdout.contains("Usage:"), "{}", run.stdout);
        let run = mesosync(here, &["help", &sub]);
        assert_eq!(run.code, 0, "`mesosync help {sub}`: {run:?}");
    }
    for args in [&["--version"][..], &["diff", "--version"], &["--help"]] {
        let run = mesosync(here, args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }
    // No subcommand, an unknown one, a missing or bad value: all usage errors.
    let bad: [&[&str]; 6] = [
        &[],
        &["no-such-command"],
        &["diff", "--base"],
        &["diff", "--head", "HEAD"],
        &["diff", "--output", "yaml"],
        &["diff", "--fail-on-restarts", "many", "--base", "main"],
    ];
    for args in bad {
        let run = mesosync(here, args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
    }
}

/// The shell of the step (GitHub) or script entry (GitLab) that runs `mesosync diff`.
fn preview_script(recipe: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci").join(recipe);
    let text = std::fs::read_to_string(&path).unwrap();
    let yaml: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{recipe}: {e}"));
    let scripts: Vec<String> = match recipe {
        "github-actions.yml" => yaml["jobs"]["preview"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_string))
            .collect(),
        _ => yaml["mesosync-preview"]["script"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
    };
    let found: Vec<String> = scripts.into_iter().filter(|s| s.contains("mesosync diff")).collect();
    assert_eq!(found.len(), 1, "{recipe}: one preview step");
    found[0].clone()
}

fn run_script(repo: &Repo, script: &str, env: &[(&str, &str)]) -> (i32, String) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mesosync")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(repo.path())
        .env("PATH", path)
        .env("MANIFESTS", "deploy")
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    let preview = std::fs::read_to_string(repo.path().join("preview.md")).unwrap_or_default();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), preview)
}

#[test]
fn the_ci_recipes_preview_step_runs_on_a_local_repository() {
    let repo = Repo::new();
    let base = git(repo.path(), &["rev-parse", "HEAD"]);
    repo.branch("pr", "main");
    repo.edit("deploy/db.yaml", "mem: 512", "mem: 1024");
    let head = repo.commit("db: more memory");
    let output = repo.path().join("github-output");
    for recipe in ["github-actions.yml", "gitlab-ci.yml"] {
        let script = preview_script(recipe);
        let env = [
            ("BASE", base.as_str()),
            ("HEAD", head.as_str()),
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", base.as_str()),
            ("CI_COMMIT_SHA", head.as_str()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ];
        let (_, preview) = run_script(&repo, &script, &env);
        assert!(preview.starts_with("<!-- mesosync-preview -->\n"), "{recipe}: {preview}");
        assert!(
            preview.contains("<code>~ /mem: 512 → 1024</code> — deploy/db.yaml:6:3"),
            "{recipe}: {preview}"
        );
        let code = match recipe {
            "github-actions.yml" => std::fs::read_to_string(&output).unwrap().trim().to_string(),
            _ => std::fs::read_to_string(repo.path().join("code.txt")).unwrap().trim().to_string(),
        };
        assert!(code.ends_with('2'), "{recipe}: exit code {code}");
        std::fs::remove_file(repo.path().join("preview.md")).unwrap();
    }
    // A head that does not load: the comment shows the errors instead.
    repo.edit("deploy/db.yaml", "  mem: 1024\n", "  mem: 1024\n  memory_mb: 1\n");
    let broken = repo.commit("typo");
    let script = preview_script("github-actions.yml");
    let env =
        [("BASE", base.as_str()), ("HEAD", broken.as_str()), ("GITHUB_OUTPUT", output.to_str().unwrap())];
    let (_, preview) = run_script(&repo, &script, &env);
    assert!(preview.contains("### mesosync preview failed"), "{preview}");
    assert!(preview.contains("deploy/db.yaml:7:3: unknown field `memory_mb`"), "{preview}");
    assert!(std::fs::read_to_string(&output).unwrap().trim().ends_with("code=1"));
}
