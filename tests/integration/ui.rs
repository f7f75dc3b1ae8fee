//! Issue 21: the dashboard in a real browser. Debian's chromium, headless, driven over
//! WebDriver (chromedriver, started here on a free loopback port) by fantoccini, against
//! the real binary (`mesosync run`) and the emulator. Without chromium or chromedriver
//! these tests fail under CI and print SKIPPED elsewhere (`requires`).
//!
//! Screenshots of each page land in target/ui-screenshots/ (the ones in docs/ui/ are
//! copies of them).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::e2e::Controller;
use super::harness::{self, Harness};
use super::preview::git;
use super::requires;

const TOKEN: &str = "ui-test-token-8d1f";

/// Where `program` is, if it is on the PATH.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Whether chromium and chromedriver are installed.
pub fn browser_available() -> bool {
    which("chromium").is_some() && which("chromedriver").is_some()
}

/// A headless chromium behind its own chromedriver.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver on a free loopback port and open a session; `None` (after
    /// [`requires::missing`]) when the browser is not installed.
    async fn start(test: &str, extra_args: &[&str]) -> Option<Browser> {
        if !browser_available() {
            requires::missing(
                test,
                "chromium and chromedriver",
                "`make test-deps` (scripts/browser.sh install)",
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = tokio::process::Command::new(which("chromedriver").unwrap())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match reqwest::get(format!("{url}/status")).await {
                Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let binary = which("chromium").unwrap().display().to_string();
        let capabilities = json!({"goog:chromeOptions": {"binary": binary, "args": args}});
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a chromium session opens");
        Some(Browser { client, _driver: driver, _profile: profile })
    }

    /// Wait (at most 30 s) until the JavaScript expression `condition` is true on the
    /// page, without reloading it.
    async fn wait_until(&self, what: &str, condition: &str) {
        let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.client.execute(&script, vec![]).await.unwrap() == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!("timed out waiting for {what} ({condition}); page:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// A bare origin, an author clone and the controller's checkout, holding a copy of the
/// repository's manifests/ (the Kolla example).
struct Repos {
    _root: tempfile::TempDir,
    author: PathBuf,
    checkout: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn repos() -> Repos {
    let root = tempfile::tempdir().unwrap();
    let (origin, author, checkout) =
        (root.path().join("origin.git"), root.path().join("author"), root.path().join("checkout"));
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests"), &author);
    git(&author, &["init", "--quiet", "-b", "main"]);
    git(&author, &["add", "."]);
    git(&author, &["commit", "--quiet", "-m", "kolla"]);
    git(root.path(), &["clone", "--quiet", "--bare", author.to_str().unwrap(), origin.to_str().unwrap()]);
    git(&author, &["remote", "add", "origin", origin.to_str().unwrap()]);
    git(root.path(), &["clone", "--quiet", origin.to_str().unwrap(), checkout.to_str().unwrap()]);
    Repos { _root: root, author, checkout }
}

/// Every value under a secret-looking name in the sandbox (what apply wrote, decrypted).
async fn live_secrets(h: &Harness) -> Vec<String> {
    let secret_name = |name: &str| ["PASSWORD", "TOKEN", "COOKIE", "SECRET"].iter().any(|s| name.contains(s));
    let mut out = Vec::new();
    let apps = h.get(&h.marathon("/v2/apps")).await.json();
    for app in apps["apps"].as_array().unwrap() {
        for (name, value) in app["env"].as_object().into_iter().flatten() {
            if secret_name(name) && value.as_str().is_some_and(|v| v.len() >= 4) {
                out.push(value.as_str().unwrap().to_string());
            }
        }
    }
    let jobs = h.get(&h.chronos("/scheduler/jobs")).await.json();
    for job in jobs.as_array().unwrap() {
        for var in job["environmentVariables"].as_array().into_iter().flatten() {
            if var["name"].as_str().is_some_and(secret_name)
                && var["value"].as_str().is_some_and(|v| v.len() >= 4)
            {
                out.push(var["value"].as_str().unwrap().to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn assert_no_secret(page: &str, source: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!source.contains(secret.as_str()), "{page} shows a secret value");
    }
}

async fn post_action(base: &str, path: &str, token: Option<&str>, origin: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new().post(format!("{base}{path}"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let form: Vec<(&str, &str)> = token.map(|t| vec![("token", t)]).unwrap_or_default();
    request.form(&form).send().await.unwrap().status()
}

/// The whole tour on one controller: overview (revision, counts), filtering, a manual
/// drift of a secret appearing live and masked, a git edit fetched by "refresh from
/// git" shown field by field with its file:line, "reconcile now" refused without the
/// token and done with it, the history.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_a_real_browser() {
    let Some(browser) = Browser::start("ui::dashboard_in_a_real_browser", &[]).await else { return };
    let h = harness::start().await;
    let repos = repos();
    let (key_env, key) = harness::demo_key_env();
    let applied = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesosync"))
        .env(key_env, &key)
        .arg("apply")
        .arg(&repos.checkout)
        .args(["--marathon", &h.sandbox.marathon_url(), "--chronos", &h.sandbox.chronos_url()])
        .output()
        .await
        .unwrap();
    assert!(applied.status.success(), "apply: {}", String::from_utf8_lossy(&applied.stderr));
    let apps = h.get(&h.marathon("/v2/apps")).await.json()["apps"].as_array().unwrap().len();
    let jobs = h.get(&h.chronos("/scheduler/jobs")).await.json().as_array().unwrap().len();
    assert!(apps > 10 && jobs > 5, "the Kolla example was applied: {apps} apps, {jobs} jobs");
    let secrets = live_secrets(&h).await;
    assert!(secrets.len() >= 5, "the example carries secrets: {}", secrets.len());

    let args = ["--dry-run", "--ui-actions", "--git-pull", "main", "--git-interval", "1h"];
    let controller = Controller::start_with_env(&h, &repos.checkout, &args, &[("MESOSYNC_UI_TOKEN", TOKEN)]);
    controller.wait_status("the first reconcile", |s| s["ready"] == true).await;
    let base = controller.status_base.clone();
    let c = &browser.client;

    // Overview: the revision and the counts of the sandbox reconciled from manifests/.
    c.goto(&format!("{base}/")).await.unwrap();
    let head = git(&repos.checkout, &["rev-parse", "HEAD"]);
    assert_eq!(browser.text("#commit").await, head[..12]);
    assert_eq!(browser.text("dd[data-count=synced]").await, (apps + jobs).to_string());
    assert_eq!(browser.text("dd[data-count=out-of-sync]").await, "0");
    assert!(browser.text("#frame").await.contains("DRY RUN"));
    let mut healths = 0;
    for cell in c.find_all(Locator::Css("dd[data-health]")).await.unwrap() {
        healths += cell.text().await.unwrap().parse::<usize>().unwrap();
    }
    assert_eq!(healths, apps + jobs, "every object has a health");
    browser.screenshot("overview").await;
    assert_no_secret("the overview", &c.source().await.unwrap(), &secrets);

    // Objects: filtering by text finds the app (and only matching objects).
    c.goto(&format!("{base}/objects")).await.unwrap();
    assert!(browser.text("#count").await.contains(&format!("of {}", apps + jobs)));
    c.find(Locator::Css("#f-q")).await.unwrap().send_keys("horizon").await.unwrap();
    c.find(Locator::Css("#filters button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait_until("the filtered table", "location.search.includes('q=horizon')").await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for row in c.find_all(Locator::Css("table.objects tbody tr")).await.unwrap() {
            ids.push(row.attr("data-id").await.unwrap().unwrap());
        }
        ids
    };
    assert!(ids.contains(&"/openstack/horizon/horizon".to_string()), "{ids:?}");
    assert!(ids.iter().all(|id| id.contains("horizon")), "{ids:?}");
    let health = c
        .find(Locator::Css("tr[data-id='/openstack/horizon/horizon'] .badge[class*=health-]"))
        .await
        .unwrap();
    assert!(!health.attr("title").await.unwrap().unwrap_or_default().is_empty(), "the health has its reason");
    browser.screenshot("objects").await;

    // A manual drift of a secret on the sandbox appears live (no reload), masked.
    let keystone = "/openstack/keystone/keystone-api";
    c.goto(&format!("{base}/object?kind=app&id={keystone}")).await.unwrap();
    browser.wait_until("an object page in sync", "document.getElementById('no-diff')").await;
    c.execute("window.notReloaded = true;", vec![]).await.unwrap();
    let mut env = h.app(keystone).await["env"].clone();
    let real = env["OS_TOKEN"].as_str().unwrap().to_string();
    assert!(secrets.contains(&real));
    env["OS_TOKEN"] = json!("drifted-token-4242");
    let drift = h.patch(&h.marathon(&format!("/v2/apps{keystone}")), &json!({"env": env})).await;
    assert!(drift.status.is_success(), "{}", drift.text);
    browser
        .wait_until(
            "the drift on the page",
            "document.querySelector('#changes tr[data-pointer=\"/env/OS_TOKEN\"]')",
        )
        .await;
    assert_eq!(c.execute("return window.notReloaded === true;", vec![]).await.unwrap(), json!(true));
    let row = browser.text("#changes tr[data-pointer=\"/env/OS_TOKEN\"]").await;
    assert_eq!(row.matches("(sensitive value)").count(), 2, "{row}");
    let source = c.source().await.unwrap();
    assert!(!source.contains("drifted-token-4242"), "the drifted value is shown");
    assert_no_secret("the drifted object", &source, &secrets);
    browser.screenshot("object-secret").await;

    // Actions: refused without the token, with a wrong one, and from another site.
    assert_eq!(post_action(&base, "/ui/actions/reconcile", None, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post_action(&base, "/ui/actions/reconcile", Some("wrong"), None).await,
        StatusCode::UNAUTHORIZED
    );
    let evil = Some("http://evil.example");
    assert_eq!(post_action(&base, "/ui/actions/refresh", Some(TOKEN), evil).await, StatusCode::FORBIDDEN);

    // An edit in git, fetched by "refresh from git" (with the token), live on the overview.
    let file = repos.author.join("horizon/horizon.yaml.j2");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().position(|l| l.trim_start().starts_with("instances:")).unwrap() + 1;
    std::fs::write(&file, text.replacen("instances: {{ resources.horizon.instances }}", "instances: 7", 1))
        .unwrap();
    git(&repos.author, &["commit", "--quiet", "-am", "horizon: 7 instances"]);
    git(&repos.author, &["push", "--quiet", "origin", "main"]);
    let new_head = git(&repos.author, &["rev-parse", "HEAD"]);
    c.goto(&format!("{base}/")).await.unwrap();
    c.execute("window.notReloaded = true;", vec![]).await.unwrap();
    c.find(Locator::Css("#token")).await.unwrap().send_keys(TOKEN).await.unwrap();
    c.find(Locator::Css("#refresh-git")).await.unwrap().click().await.unwrap();
    browser
        .wait_until(
            "the refresh answer",
            "document.getElementById('action-result').textContent.startsWith('202')",
        )
        .await;
    let commit = format!("document.getElementById('commit').textContent === '{}'", &new_head[..12]);
    browser.wait_until("the new revision on the overview", &commit).await;
    browser
        .wait_until(
            "horizon out of sync",
            "document.querySelector('dd[data-count=\"out-of-sync\"]').textContent === '2'",
        )
        .await;
    assert_eq!(c.execute("return window.notReloaded === true;", vec![]).await.unwrap(), json!(true));

    // "Reconcile now" with the token.
    c.find(Locator::Css("#reconcile-now")).await.unwrap().click().await.unwrap();
    browser
        .wait_until(
            "the reconcile answer",
            "document.getElementById('action-result').textContent.includes('reconcile requested')",
        )
        .await;
    browser
        .wait_until(
            "the requested reconcile",
            "document.getElementById('last-reasons').textContent.includes('requested')",
        )
        .await;
    browser.screenshot("overview-after").await;

    // The edited app: exactly the changed field, with its file:line.
    c.goto(&format!("{base}/object?kind=app&id=/openstack/horizon/horizon")).await.unwrap();
    let rows = c.find_all(Locator::Css("#changes tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "one changed field");
    assert_eq!(rows[0].attr("data-pointer").await.unwrap().as_deref(), Some("/instances"));
    let cells = rows[0].text().await.unwrap();
    assert!(cells.contains('7'), "{cells}");
    assert!(cells.contains(&format!("horizon/horizon.yaml.j2:{line}:")), "{cells}");
    assert!(browser.text("#plan").await.contains("scale"));
    assert!(browser.text("#health").await.contains("since"), "the object page shows its health");
    browser.screenshot("object").await;
    assert_no_secret("the edited object", &c.source().await.unwrap(), &secrets);

    // History: the reconciles and why they ran.
    c.goto(&format!("{base}/history")).await.unwrap();
    let history = browser.text("table.history").await;
    for reason in ["startup", "live-event", "git-pull", "requested"] {
        assert!(history.contains(reason), "{reason} in {history}");
    }
    browser.screenshot("history").await;
    assert_no_secret("the history", &c.source().await.unwrap(), &secrets);
    let background = "return getComputedStyle(document.body).backgroundColor;";
    assert_eq!(c.execute(background, vec![]).await.unwrap(), json!("rgb(255, 255, 255)"));
    browser.close().await;

    // Dark: the same pages under prefers-color-scheme: dark.
    let dark = Browser::start("ui::dashboard_in_a_real_browser", &["--force-dark-mode"]).await.unwrap();
    dark.client.goto(&format!("{base}/object?kind=app&id={keystone}")).await.unwrap();
    let prefers = "return matchMedia('(prefers-color-scheme: dark)').matches;";
    assert_eq!(dark.client.execute(prefers, vec![]).await.unwrap(), json!(true));
    assert_eq!(dark.client.execute(background, vec![]).await.unwrap(), json!("rgb(17, 20, 24)"));
    dark.screenshot("object-secret-dark").await;
    dark.client.goto(&format!("{base}/")).await.unwrap();
    dark.screenshot("overview-dark").await;
    dark.close().await;
    drop(controller);
}

/// Milliseconds from navigation start to the first contentful paint of the page just
/// loaded, and to the end of its response, as the browser measured them.
async fn first_paint(browser: &Browser, url: &str) -> (f64, f64) {
    browser.client.goto(url).await.unwrap();
    browser
        .wait_until(
            "the first paint entry",
            "performance.getEntriesByName('first-contentful-paint').length > 0",
        )
        .await;
    let timing = browser
        .client
        .execute(
            "return [performance.getEntriesByName('first-contentful-paint')[0].startTime, \
             performance.getEntriesByType('navigation')[0].responseEnd];",
            vec![],
        )
        .await
        .unwrap();
    (timing[0].as_f64().unwrap(), timing[1].as_f64().unwrap())
}

/// Issue 21.2: 10,000 apps and 5,000 jobs (the benchmarks' generated set), planned by a
/// dry run against an empty sandbox (every object out of sync, every change listed up
/// to the status's budget); the objects table paints within a second in the browser.
#[tokio::test(flavor = "multi_thread")]
async fn fifteen_thousand_objects_paint_within_a_second() {
    let Some(browser) = Browser::start("ui::fifteen_thousand_objects_paint_within_a_second", &[]).await
    else {
        return;
    };
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spec =
        mesosync::generate::GenSpec { apps: 10_000, jobs: 5_000, seed: 42, per_file: 50, run_once: false };
    mesosync::generate::write_manifests(dir.path(), &spec).unwrap();
    let controller = Controller::start(&h, dir.path(), &["--dry-run"]);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ready = reqwest::get(format!("{}/readyz", controller.status_base)).await.unwrap().status();
        if ready == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the first reconcile of 15,000 objects did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let base = &controller.status_base;
    // A fresh chromium's first navigation also pays for starting its renderer: warm it
    // on the small history page, so the figures are the pages' own.
    browser.client.goto(&format!("{base}/history")).await.unwrap();
    let mut figures = Vec::new();
    for (page, path) in [
        ("overview", "/".to_string()),
        ("objects", "/objects".to_string()),
        ("objects filtered", "/objects?kind=job&q=job-4&sort=state&dir=desc&page=3".to_string()),
        ("object", "/object?kind=app&id=/region-0/project-0/svc-0".to_string()),
    ] {
        let (paint, response) = first_paint(&browser, &format!("{base}{path}")).await;
        figures.push(format!(
            "{page} ({path}): first contentful paint {paint:.0} ms, response end {response:.0} ms"
        ));
        assert!(paint < 1000.0, "{page}: first paint took {paint:.0} ms");
    }
    // The last page is one app's: a create.
    assert!(browser.text("#plan").await.contains("create"));
    assert!(browser.text("#not-live").await.contains("creates it"));
    browser.client.goto(&format!("{base}/objects")).await.unwrap();
    assert!(browser.text("#count").await.contains("of 15000 matching"), "{}", browser.text("#count").await);
    let figures = figures.join("\n");
    println!("{figures}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("first-paint-15k.txt"), format!("{figures}\n")).unwrap();
    browser.screenshot("objects-15k").await;
    browser.close().await;
}

/// The object page lists the writes made to an object (no browser needed): the create,
/// then a scale with the changed field and its file:line, each with its reconcile,
/// outcome and Marathon deployment.
#[tokio::test(flavor = "multi_thread")]
async fn writes_are_listed_on_the_object_page() {
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, super::fake_reconcile::app_manifest("/ui/web", 1)).unwrap();
    let controller = Controller::start(&h, dir.path(), &[]);
    controller.wait_status("the first reconcile", |s| s["ready"] == true).await;
    let page = format!("{}/object?kind=app&id=/ui/web", controller.status_base);
    let get = || async { reqwest::get(&page).await.unwrap().text().await.unwrap() };
    let first = get().await;
    assert!(first.contains("<td>create</td>") && first.contains("applied"), "{first}");
    let deployment = regex::Regex::new(
        r"<td><code>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}</code></td>",
    )
    .unwrap();
    assert!(deployment.is_match(&first), "the deployment id is shown: {first}");

    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().position(|l| l.trim_start().starts_with("instances:")).unwrap() + 1;
    std::fs::write(&file, text.replace("instances: 1", "instances: 2")).unwrap();
    controller.wait_status("the scale", |s| s["last_reconcile"]["writes"][0]["action"] == "scale").await;
    let second = get().await;
    assert!(second.contains("<td>scale</td>"), "{second}");
    assert!(second.contains(&format!("<code>/instances</code> (app.yaml:{line}:")), "{second}");
    assert!(second.find("<td>scale</td>") < second.find("<td>create</td>"), "newest first");
}

/// `--ui-actions` without a token (or with two) is refused at start, naming the
/// variables; nothing is served unauthenticated.
#[test]
fn actions_are_refused_at_start_without_exactly_one_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "from-a-file\n").unwrap();
    let token_file = token_file.display().to_string();
    for (env, expected) in [
        (vec![], "--ui-actions needs a token (MESOSYNC_UI_TOKEN or MESOSYNC_UI_TOKEN_FILE)"),
        (vec![("MESOSYNC_UI_TOKEN", "a"), ("MESOSYNC_UI_TOKEN_FILE", token_file.as_str())], "set twice"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesosync"))
            .env_remove("MESOSYNC_UI_TOKEN")
            .env_remove("MESOSYNC_UI_TOKEN_FILE")
            .envs(env)
            .args(["run", dir.path().to_str().unwrap(), "--marathon", "http://127.0.0.1:9", "--ui-actions"])
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("from-a-file"));
    }
}
