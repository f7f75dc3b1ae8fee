//! `mesosync diff DIR --base REV [--head REV]` through the real binary, on real git
//! repositories made here: several commits and branches, a template change that alters
//! 3 of 20 apps, a values-only change, reformatting and file moves that change
//! nothing, a deleted file, an invalid head, a changed secret, the Markdown comment
//! (insta snapshot) and its size cap, live mode against the emulator. Every test
//! checks that the work tree and the index are byte-identical afterwards.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness;

const BIN: &str = env!("CARGO_BIN_EXE_mesosync");

/// Run git in `dir` with no user or system configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=mesosync test", "-c", "user.email=test@example.invalid"])
        .args(["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap_or_else(|e| panic!("git must be installed for these tests: {e}"));
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `mesosync` in `cwd` with no `MESOSYNC_*` from the outer environment.
pub fn mesosync(cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MESOSYNC_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.current_dir(cwd).args(args).env("NO_COLOR", "1").output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The 20 services of the shop: three of them are front ends.
const VALUES: &str = "\
registry: registry.local:5000
tag: \"1.0\"
services:
  - {name: cart, tier: backend}
  - {name: catalog, tier: backend}
  - {name: checkout, tier: frontend}
  - {name: search, tier: backend}
  - {name: web, tier: frontend}
  - {name: mobile, tier: frontend}
  - {name: orders, tier: backend}
  - {name: payments, tier: backend}
  - {name: users, tier: backend}
  - {name: sessions, tier: backend}
  - {name: stock, tier: backend}
  - {name: pricing, tier: backend}
  - {name: reviews, tier: backend}
  - {name: images, tier: backend}
  - {name: mailer, tier: backend}
  - {name: reports, tier: backend}
  - {name: audit, tier: backend}
  - {name: gateway, tier: backend}
  - {name: ledger, tier: backend}
  - {name: tax, tier: backend}
";

const TEMPLATE: &str = "\
{% for s in services %}
---
kind: MarathonApp
spec:
  id: /shop/{{ s.name }}
  cmd: serve --port $PORT0
  cpus: 0.1
  mem: 64
  container:
    type: DOCKER
    docker:
      image: \"{{ registry }}/{{ s.name }}:{{ tag }}\"
{% if s.tier == \"frontend\" %}
  labels:
    TIER: frontend
{% endif %}
{% endfor %}
";

const DB: &str = "\
kind: MarathonApp
spec:
  id: /shop/db
  cmd: postgres
  cpus: 0.5
  mem: 512
  env:
    DB_PASSWORD: hunter2-base
    LOG_LEVEL: info
";

const JOBS: &str = "\
kind: ChronosJob
spec:
  name: shop-nightly-report
  command: report --all
  owner: ops@example.org
  schedule: R/2030-01-01T02:00:00Z/P1D
";

/// A repository with the shop under `deploy/` committed on `main`, and a README
/// outside the manifest directory.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo { dir };
        git(repo.path(), &["init", "--quiet"]);
        repo.write("README.md", "the shop\n");
        repo.write("deploy/values.yaml", VALUES);
        repo.write("deploy/apps.yaml.j2", TEMPLATE);
        repo.write("deploy/db.yaml", DB);
        repo.write("deploy/jobs.yaml", JOBS);
        repo.commit("the shop");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path().join(rel)).unwrap()
    }

    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} has no {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    pub fn commit(&self, message: &str) -> String {
        git(self.path(), &["add", "--all"]);
        git(self.path(), &["commit", "--quiet", "-m", message]);
        git(self.path(), &["rev-parse", "HEAD"])
    }

    /// Check out a new branch `name` from `from`.
    pub fn branch(&self, name: &str, from: &str) {
        git(self.path(), &["checkout", "--quiet", "-b", name, from]);
    }

    /// Every file of the work tree and `.git/index`, byte for byte (`.git` objects
    /// and logs aside: reading them is allowed, writing refs or the index is not).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        snapshot_dir(self.path(), self.path(), &mut out);
        out.insert(PathBuf::from(".git/index"), fs::read(self.path().join(".git/index")).unwrap());
        out.insert(PathBuf::from(".git/HEAD"), fs::read(self.path().join(".git/HEAD")).unwrap());
        out
    }

    /// `mesosync diff deploy …` from the top of the repository, checking that the
    /// work tree and the index are untouched.
    pub fn diff(&self, args: &[&str]) -> Run {
        let before = self.snapshot();
        let mut all = vec!["diff", "deploy"];
        all.extend_from_slice(args);
        let run = mesosync(self.path(), &all);
        assert!(before == self.snapshot(), "the work tree or the index changed");
        assert!(!self.path().join(".git/index.lock").exists());
        run
    }
}

fn snapshot_dir(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if path.is_dir() {
            snapshot_dir(root, &path, out);
        } else {
            out.insert(path.strip_prefix(root).unwrap().to_path_buf(), fs::read(&path).unwrap());
        }
    }
}

/// The template change of the tests: front ends get a second label and more CPU.
fn change_the_front_ends(repo: &Repo) {
    repo.edit("deploy/apps.yaml.j2", "    TIER: frontend\n", "    TIER: frontend\n    EDGE: \"true\"\n");
}

/// Headers of the changed objects in a text preview.
fn headers(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with(['~', '+', '-', '=']) && l.contains(": ")).collect()
}

#[test]
fn a_template_change_alters_3_of_20_apps_and_points_into_the_template() {
    let repo = Repo::new();
    repo.branch("pr", "main");
    change_the_front_ends(&repo);
    repo.commit("front ends: edge label");
    // A second commit on the branch: the preview is of the whole branch.
    repo.edit("deploy/db.yaml", "mem: 512", "mem: 1024");
    repo.commit("db: more memory");
    git(repo.path(), &["checkout", "--quiet", "main"]);

    let run = repo.diff(&["--base", "main", "--head", "pr"]);
    assert_eq!(run.code, 2, "{run:?}");
    let changed = headers(&run.stdout);
    assert_eq!(changed.len(), 4, "{}", run.stdout);
    for app in ["/shop/checkout", "/shop/mobile", "/shop/web"] {
        let line = changed.iter().find(|l| l.contains(&format!("app {app}:"))).unwrap();
        assert!(line.contains("update, restart"), "{line}");
        assert!(line.contains("deploy/apps.yaml.j2"), "{line}");
    }
    // The label is written on template line 16 (the rendered lines map back).
    assert!(run.stdout.contains("+ /labels/EDGE = \"true\"  (deploy/apps.yaml.j2:16:"), "{}", run.stdout);
    assert!(run.stdout.contains("~ /mem: 512 → 1024  (deploy/db.yaml:6:"), "{}", run.stdout);
    assert!(run.stdout.contains("apps that restart (4): /shop/checkout, /shop/db, /shop/mobile, /shop/web"));
    assert!(run.stdout.contains("update (restart)       4"), "{}", run.stdout);
    assert!(run.stdout.contains("--- base\n") || run.stdout.contains("    --- base"), "{}", run.stdout);
    assert!(run.stdout.contains("offline"));
    assert!(run.stdout.contains("Run-once jobs that this change would run are not shown yet"));
    assert!(run.stdout.trim_end().ends_with("0 to create, 4 to update (4 restart), 0 to scale, 0 to delete"));

    // The same branch by commit hash and by a relative name.
    let pr = git(repo.path(), &["rev-parse", "pr"]);
    let by_hash = repo.diff(&["--base", "pr~2", "--head", &pr]);
    let body = |out: &str| out.split_once('\n').unwrap().1.to_string();
    assert_eq!(body(&by_hash.stdout), body(&run.stdout));
    assert!(by_hash.stdout.starts_with("mesosync preview: base pr~2 ("), "{}", by_hash.stdout);
    assert!(by_hash.stdout.contains(&format!("→ head {} (offline", &pr[..12])), "{}", by_hash.stdout);
    // Head defaults to the work tree (here: main, so nothing changes)…
    let same = repo.diff(&["--base", "main"]);
    assert_eq!((same.code, headers(&same.stdout).len()), (0, 0), "{same:?}");
    assert!(same.stdout.contains("→ head work tree"));
    // …and sees uncommitted edits.
    change_the_front_ends(&repo);
    let dirty = repo.diff(&["--base", "main"]);
    assert_eq!((dirty.code, headers(&dirty.stdout).len()), (2, 3), "{dirty:?}");
}

#[test]
fn a_values_only_change_restarts_what_uses_the_value() {
    let repo = Repo::new();
    repo.branch("bump", "main");
    repo.edit("deploy/values.yaml", "tag: \"1.0\"", "tag: \"1.1\"");
    repo.commit("release 1.1");

    let run = repo.diff(&["--base", "main", "--head", "bump"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(headers(&run.stdout).len(), 20, "{}", run.stdout);
    assert!(run.stdout.contains(
        "~ /container/docker/image: \"registry.local:5000/cart:1.0\" → \"registry.local:5000/cart:1.1\""
    ));
    assert!(run.stdout.contains("apps that restart (20)"));

    // A values file named with --values is read at each revision too.
    repo.branch("env", "main");
    repo.write("envs/prod.yaml", "tag: \"2.0\"\n");
    repo.commit("prod values");
    repo.branch("env-bump", "env");
    repo.write("envs/prod.yaml", "tag: \"2.1\"\n");
    repo.commit("prod 2.1");
    let run = repo.diff(&["--base", "env", "--head", "env-bump", "--values", "envs/prod.yaml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("cart:2.0\" → \"registry.local:5000/cart:2.1\""), "{}", run.stdout);

    // The policy flag: more restarts than allowed fails the job, after printing.
    let run = repo.diff(&["--base", "main", "--head", "bump", "--fail-on-restarts", "5"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("restarts 20 app(s), more than --fail-on-restarts 5"), "{}", run.stderr);
    assert!(run.stdout.contains("apps that restart (20)"));
    assert_eq!(repo.diff(&["--base", "main", "--head", "bump", "--fail-on-restarts", "20"]).code, 2);
}

#[test]
fn reformatting_and_moving_files_show_no_change() {
    let repo = Repo::new();
    repo.branch("tidy", "main");
    // The same app in other words: flow style, other key order, a comment, quotes,
    // an integral float.
    repo.write(
        "deploy/db.yaml",
        "# the database\nkind: MarathonApp\nspec: {mem: 512.0, cpus: 0.5, id: \"/shop/db\", cmd: 'postgres',\n  \
         env: {LOG_LEVEL: info, DB_PASSWORD: hunter2-base}}\n",
    );
    // A file moved into a new directory, and the template renamed.
    fs::create_dir_all(repo.path().join("deploy/batch")).unwrap();
    git(repo.path(), &["mv", "deploy/jobs.yaml", "deploy/batch/nightly.yaml"]);
    git(repo.path(), &["mv", "deploy/apps.yaml.j2", "deploy/shop.yml.j2"]);
    repo.commit("tidy up");

    let run = repo.diff(&["--base", "main", "--head", "tidy"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(headers(&run.stdout).is_empty(), "{}", run.stdout);
    assert!(run.stdout.contains("apps that restart: none"));
    let md = repo.diff(&["--base", "main", "--head", "tidy", "--output", "markdown"]);
    assert_eq!(md.code, 0);
    assert!(!md.stdout.contains("<details>"), "{}", md.stdout);
}

#[test]
fn a_deleted_file_is_a_delete_only_with_prune() {
    let repo = Repo::new();
    repo.branch("drop-db", "main");
    git(repo.path(), &["rm", "--quiet", "deploy/db.yaml"]);
    repo.commit("drop the database");

    // Prune off: apply would leave it alone, and says so.
    let run = repo.diff(&["--base", "main", "--head", "drop-db"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("= app /shop/db: left alone"), "{}", run.stdout);
    assert!(run.stdout.contains("prune is off"), "{}", run.stdout);
    assert!(run.stdout.contains("left alone             1"), "{}", run.stdout);

    let run = repo.diff(&["--base", "main", "--head", "drop-db", "--prune"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("- app /shop/db: delete, destroy"), "{}", run.stdout);
    assert!(run.stdout.contains("delete                 1"), "{}", run.stdout);

    let run = repo.diff(&["--base", "main", "--head", "drop-db", "--prune", "--fail-on-delete"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("deletes 1 object(s) (--fail-on-delete): app /shop/db"), "{}", run.stderr);
}

#[test]
fn an_invalid_head_exits_1_naming_the_file_and_line_in_head() {
    let repo = Repo::new();
    repo.branch("broken", "main");
    repo.edit("deploy/db.yaml", "  mem: 512\n", "  mem: 512\n  memory_mb: 10\n");
    repo.commit("typo");
    git(repo.path(), &["checkout", "--quiet", "main"]);

    let run = repo.diff(&["--base", "main", "--head", "broken"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("deploy/db.yaml:7:3: unknown field `memory_mb`"), "{}", run.stderr);
    assert!(run.stderr.contains("head: 1 error(s)"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no preview of a head that does not load: {}", run.stdout);

    // A template error in head points into the template, at head's line.
    repo.branch("broken-template", "main");
    repo.edit("deploy/apps.yaml.j2", "  mem: 64\n", "  mem: {{ memory }}\n");
    repo.commit("undefined value");
    let run = repo.diff(&["--base", "main", "--head", "broken-template"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("deploy/apps.yaml.j2:8:1: undefined variable"), "{}", run.stderr);

    // Unknown revisions and directories outside git are errors too.
    let run = repo.diff(&["--base", "no-such-branch"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("unknown revision \"no-such-branch\""), "{}", run.stderr);
    let plain = tempfile::tempdir().unwrap();
    let run = mesosync(plain.path(), &["diff", ".", "--base", "main"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not inside a git work tree"), "{}", run.stderr);
}

#[test]
fn a_changed_secret_is_reported_but_never_shown() {
    let repo = Repo::new();
    repo.branch("rotate", "main");
    repo.edit("deploy/db.yaml", "hunter2-base", "hunter2-head");
    repo.commit("rotate the password");

    for output in ["text", "json", "markdown"] {
        let run = repo.diff(&["--base", "main", "--head", "rotate", "--output", output]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(!run.stdout.contains("hunter2"), "{output}: {}", run.stdout);
        assert!(run.stdout.contains("(sensitive value)"), "{output}: {}", run.stdout);
        assert!(run.stdout.contains("DB_PASSWORD"), "{output}: {}", run.stdout);
    }
}

/// The Markdown of the template-change branch, hashes replaced.
fn markdown_of_the_front_end_change(extra: &[&str]) -> (Repo, String) {
    let repo = Repo::new();
    repo.branch("pr", "main");
    change_the_front_ends(&repo);
    repo.edit("deploy/db.yaml", "hunter2-base", "hunter2-head");
    repo.write(
        "deploy/cache.yaml",
        "kind: MarathonApp\nspec:\n  id: /shop/cache\n  cmd: memcached\n  instances: 2\n",
    );
    repo.edit("deploy/jobs.yaml", "report --all", "report --all --csv");
    repo.commit("front ends, password, cache, report");
    let mut args = vec!["--base", "main", "--head", "pr", "--output", "markdown"];
    args.extend_from_slice(extra);
    let run = repo.diff(&args);
    assert_eq!(run.code, 2, "{run:?}");
    let mut text = run.stdout;
    for (name, rev) in [("main", "main"), ("pr", "pr")] {
        let commit = git(repo.path(), &["rev-parse", rev]);
        text = text.replace(&commit[..12], &format!("<{name}>"));
    }
    (repo, text)
}

#[test]
fn the_markdown_comment_reads_well() {
    let (_repo, text) = markdown_of_the_front_end_change(&[]);
    assert!(text.starts_with("<!-- mesosync-preview -->\n"));
    assert!(!text.contains("hunter2"));
    insta::assert_snapshot!("preview_markdown", text);
}

#[test]
fn the_markdown_comment_keeps_to_its_size_cap() {
    let (_repo, whole) = markdown_of_the_front_end_change(&[]);
    let (_repo, cut) = markdown_of_the_front_end_change(&["--max-bytes", "3000"]);
    assert!(whole.len() > 3000, "the test needs a preview larger than the cap: {}", whole.len());
    assert!(cut.len() <= 3000, "{} bytes:\n{cut}", cut.len());
    assert!(cut.starts_with("<!-- mesosync-preview -->\n"));
    assert!(cut.contains("| update (restart) | 4 |"), "the summary table is always whole: {cut}");
    assert!(cut.contains("left out to fit the size cap"), "{cut}");
    assert!(!cut.contains("hunter2"));
    // Every block that was opened is closed, and every fence too.
    assert_eq!(cut.matches("<details>").count(), cut.matches("</details>").count());
    assert_eq!(cut.matches("```").count() % 2, 0, "{cut}");
    // Below the smallest cap: refused as a usage error.
    let repo = Repo::new();
    let run = repo.diff(&["--base", "main", "--output", "markdown", "--max-bytes", "100"]);
    assert_eq!(run.code, 1, "{run:?}");
}

#[test]
fn json_output_carries_the_same_data() {
    let repo = Repo::new();
    repo.branch("pr", "main");
    change_the_front_ends(&repo);
    repo.commit("front ends");
    let run = repo.diff(&["--base", "main", "--head", "pr", "--output", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["mode"], "offline");
    assert_eq!(json["base"]["name"], "main");
    assert_eq!(json["head"]["commit"], git(repo.path(), &["rev-parse", "pr"]));
    assert_eq!(json["summary"]["update (restart)"], 3);
    assert_eq!(json["restarts"].as_array().unwrap().len(), 3);
    assert_eq!(json["runOnceJobs"]["shown"], false);
    let objects = json["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 3);
    assert_eq!(objects[0]["category"], "restart");
    assert!(objects[0]["changes"][0]["location"].as_str().unwrap().starts_with("deploy/apps.yaml.j2:16:"));
    assert!(objects[0]["diff"].as_str().unwrap().contains("+    \"EDGE\": \"true\""), "{}", objects[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_tells_the_change_from_drift() {
    let h = harness::start().await;
    let (marathon, chronos) = (h.sandbox.marathon_url(), h.sandbox.chronos_url());
    let repo = Repo::new();
    let target = ["--marathon", marathon.as_str(), "--chronos", chronos.as_str(), "--chronos-version", "2.4"];
    // main is applied.
    let mut apply = vec!["apply", "deploy"];
    apply.extend_from_slice(&target);
    let run = mesosync(repo.path(), &apply);
    assert_eq!(run.code, 0, "{run:?}");
    h.settle().await;
    // Someone scales the cart by hand: drift.
    let answer =
        h.put(&h.marathon("/v2/apps/shop/cart?force=true"), &serde_json::json!({"instances": 3})).await;
    assert!(answer.status.is_success(), "{}", answer.text);
    h.settle().await;
    // The PR changes the front ends and the database's memory.
    repo.branch("pr", "main");
    change_the_front_ends(&repo);
    repo.edit("deploy/db.yaml", "mem: 512", "mem: 1024");
    repo.commit("pr");
    git(repo.path(), &["checkout", "--quiet", "main"]);

    let writes_before = h.sandbox.requests().len();
    let mut args = vec!["--base", "main", "--head", "pr"];
    args.extend_from_slice(&target);
    let run = repo.diff(&args);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("live cluster → head pr"), "{}", run.stdout);
    let block = |id: &str| {
        let start = run.stdout.find(&format!("app {id}:")).unwrap_or_else(|| panic!("{id}: {}", run.stdout));
        run.stdout[start..].split("\n\n").next().unwrap().to_string()
    };
    assert!(block("/shop/web").contains("cause: caused by this change"), "{}", block("/shop/web"));
    assert!(block("/shop/db").contains("cause: caused by this change"));
    let cart = block("/shop/cart");
    assert!(cart.contains("scale") && cart.contains("cause: drift already present on base"), "{cart}");
    assert!(run.stdout.contains("--- live"), "{}", run.stdout);
    // Only the PR's restarts count against the policy: 4, not the drift.
    args.extend_from_slice(&["--fail-on-restarts", "4"]);
    assert_eq!(repo.diff(&args).code, 2);
    // Nothing was written.
    let requests = h.sandbox.requests();
    assert!(
        requests[writes_before..].iter().all(|r| r.method == "GET"),
        "{:?}",
        requests[writes_before..].iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>()
    );
}

#[test]
fn a_revision_follows_the_directory_rules_for_links_and_hidden_files() {
    let repo = Repo::new();
    repo.branch("links", "main");
    // A symlink to a manifest inside the directory: the file is read once (no
    // duplicate), as in the work tree.
    std::os::unix::fs::symlink("db.yaml", repo.path().join("deploy/db-link.yaml")).unwrap();
    // Hidden entries are skipped, and so is what is not a manifest.
    repo.write("deploy/.scratch/bad.yaml", "not: [valid");
    repo.write("deploy/notes.txt", "not a manifest\n");
    let links = repo.commit("links");
    let run = repo.diff(&["--base", "main", "--head", &links]);
    assert_eq!(run.code, 0, "{run:?}");

    // A symlink leaving the manifest directory is refused at a revision too.
    std::os::unix::fs::symlink("../README.md", repo.path().join("deploy/outside.yaml")).unwrap();
    repo.commit("escape");
    let run = repo.diff(&["--base", "main", "--head", "HEAD"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("deploy/outside.yaml: symlink points outside the manifest root"),
        "{}",
        run.stderr
    );
    // The directory walk says the same about the work tree.
    let run = mesosync(repo.path(), &["validate", "deploy"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("deploy/outside.yaml: symlink points outside the manifest root"),
        "{}",
        run.stderr
    );
}

/// Regression: a revision read from git took the root's `*.sops.yaml` for a manifest
/// (and never decrypted it), so the preview of the shipped Kolla example failed with
/// "missing `kind`" on `secrets.sops.yaml`. Its SOPS values are template values in every
/// revision, decrypted in memory, and masked like any secret.
#[test]
fn the_kolla_example_with_its_sops_passwords_previews_an_upgrade() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    super::e2e::copy_dir(&shipped, &root.join("manifests"));
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "kolla"]);
    git(root, &["checkout", "-q", "-b", "upgrade"]);
    let values = root.join("manifests/values.yaml");
    let text = fs::read_to_string(&values).unwrap();
    let line =
        text.lines().find(|l| l.starts_with("openstack_release:")).expect("openstack_release in values.yaml");
    fs::write(&values, text.replace(line, "openstack_release: \"9.9.9\"")).unwrap();
    git(root, &["commit", "-q", "-am", "upgrade"]);
    let snapshot = || {
        let mut out = BTreeMap::new();
        snapshot_dir(root, root, &mut out);
        out.insert(PathBuf::from(".git/index"), fs::read(root.join(".git/index")).unwrap());
        out
    };
    let before = snapshot();

    let (key_var, key_file) = harness::demo_key_env();
    let decrypted = mesosync::source::template::read_values(
        &shipped.join("secrets.sops.yaml"),
        &[(key_var.to_string(), key_file.clone())],
    )
    .expect("the demo key decrypts the shipped secrets")
    .secrets;
    assert!(!decrypted.is_empty());

    let diff = |with_key: bool, output: &str| {
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MESOSYNC_") || key.to_string_lossy().starts_with("SOPS_") {
                cmd.env_remove(key);
            }
        }
        if with_key {
            cmd.env(key_var, &key_file);
        }
        let args = ["diff", "manifests", "--base", "main", "--head", "upgrade", "--output", output];
        let out = cmd.current_dir(root).args(args).env("NO_COLOR", "1").output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    for output in ["text", "json", "markdown"] {
        let run = diff(true, output);
        assert_eq!(run.code, 2, "{output}: {run:?}");
        assert!(run.stdout.contains("9.9.9"), "{output}: {}", run.stdout);
        assert!(!run.stdout.contains("secrets.sops.yaml:1:1"), "{output}: {}", run.stdout);
        for secret in &decrypted {
            assert!(!run.stdout.contains(secret.as_str()), "{output} printed a decrypted value");
            assert!(!run.stderr.contains(secret.as_str()), "{output} printed a decrypted value");
        }
    }
    let run = diff(false, "text");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("secrets.sops.yaml"), "{}", run.stderr);
    assert!(snapshot() == before, "the work tree or the index changed");
}
