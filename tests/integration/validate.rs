//! The manifest loader and `mesosync validate`, through the real binary: every
//! validation error names file:line:column and says what is wrong.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/load")
}

/// Run `mesosync validate DIR`: (exit code, stdout, stderr with DIR/ stripped).
fn validate(dir: &Path) -> (i32, String, String) {
    let (key, path) = super::harness::demo_key_env();
    let out = Command::new(env!("CARGO_BIN_EXE_mesosync"))
        .arg("validate")
        .arg(dir)
        .env(key, path)
        .output()
        .unwrap();
    let prefix = format!("{}/", dir.display());
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&prefix, "");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Each bad fixture directory holds `expected.txt`: exactly the error lines
/// `validate` must print (paths relative to the fixture directory).
fn check_bad_fixture(case: &str) {
    let dir = fixtures().join(case);
    let expected = fs::read_to_string(dir.join("expected.txt")).unwrap();
    let (code, stdout, stderr) = validate(&dir);
    assert_eq!(code, 1, "{case}: validate must fail\n{stderr}");
    assert!(stdout.is_empty(), "{case}: nothing on stdout when invalid: {stdout}");
    let mut lines: Vec<&str> = stderr.lines().collect();
    let summary = lines.pop().unwrap_or_default();
    let expected_lines: Vec<&str> = expected.lines().collect();
    assert_eq!(lines, expected_lines, "{case}: error lines differ");
    assert!(
        summary.ends_with(&format!("{} error(s); nothing was written", expected_lines.len())),
        "{case}: summary line: {summary}"
    );
    // The library reports the same errors as the binary, in the same order.
    let errors = mesosync::source::load_dir(&dir).unwrap_err();
    assert_eq!(errors.len(), expected_lines.len(), "{case}");
}

#[test]
fn unknown_fields_are_named_with_a_hint() {
    check_bad_fixture("unknown_fields");
}

#[test]
fn wrong_types_are_named() {
    check_bad_fixture("wrong_types");
}

#[test]
fn invalid_marathon_ids_and_chronos_names() {
    check_bad_fixture("invalid_ids");
}

#[test]
fn duplicates_across_files_name_both_places() {
    check_bad_fixture("duplicates");
}

#[test]
fn chronos_schedule_and_parents_rules() {
    check_bad_fixture("chronos_rules");
}

#[test]
fn dependency_cycles_across_systems() {
    check_bad_fixture("cycles");
}

#[test]
fn references_to_undeclared_objects() {
    check_bad_fixture("undeclared");
}

#[test]
fn malformed_yaml_names_the_line() {
    check_bad_fixture("malformed_yaml");
}

#[test]
fn plain_json_apps_are_checked_like_yaml() {
    check_bad_fixture("json_apps");
}

#[test]
fn a_valid_directory_prints_a_summary() {
    let dir = fixtures().join("good");
    let (code, stdout, stderr) = validate(&dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.trim_end().ends_with("2 apps, 2 jobs: valid"), "{stdout}");
}

#[test]
fn loaded_objects_keep_provenance_and_canonical_ids() {
    let state = mesosync::source::load_dir(&fixtures().join("good")).unwrap();
    let ids: Vec<&str> = state.apps.iter().map(|a| a.object.id.as_str()).collect();
    assert_eq!(ids, ["/openstack/infra/mariadb", "/openstack/keystone/keystone-api"]);
    let keystone = &state.apps[1];
    // Relative id made absolute; relative dependency resolved against the parent group.
    assert_eq!(keystone.spec.value()["id"], "/openstack/keystone/keystone-api");
    assert_eq!(keystone.spec.value()["dependencies"][0], "/openstack/infra/mariadb");
    let mariadb = &state.apps[0];
    assert_eq!(mariadb.sync.ignore, ["/instances"]);
    assert_eq!(mariadb.sync.wave, Some(1));
    let image = mariadb.locate("/container/docker/image");
    assert!(image.file.ends_with("apps.yaml"));
    assert_eq!((image.line, image.column), (10, 38), "the key `image:` of the value");
    assert_eq!(mariadb.locate("/mem").line, 9);
    // A value never written (a default filled in later) points at its nearest parent.
    assert_eq!(mariadb.locate("/container/docker/forcePullImage").line, 10);
    let sync = &state.jobs[1];
    assert_eq!(sync.object.id, "keystone-db-sync");
    assert!(sync.locate("/parents/0").file.ends_with("sub/jobs.yml"));
    assert_eq!(sync.dependencies(), [mesosync::model::ObjectRef::job("keystone-db-create")]);
    let create = &state.jobs[0];
    assert_eq!(create.dependencies(), [mesosync::model::ObjectRef::app("/openstack/infra/mariadb")]);
}

#[test]
fn hidden_directories_and_other_files_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join(".git")).unwrap();
    fs::write(tmp.path().join(".git/bad.yaml"), "not: [valid").unwrap();
    fs::write(tmp.path().join("notes.txt"), "kind: nonsense").unwrap();
    fs::write(tmp.path().join("empty.yaml"), "---\n").unwrap();
    // JSON without an `id` is not a Marathon app (e.g. a saved plan kept beside).
    fs::write(tmp.path().join("plan.json"), "{\"actions\": []}").unwrap();
    let (code, stdout, stderr) = validate(tmp.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("0 apps, 0 jobs"), "{stdout}");
}

#[test]
fn symlinks_leaving_the_root_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("app.yaml"), "kind: MarathonApp\nspec: {id: /x, cmd: sleep}\n").unwrap();
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path().join("app.yaml"), root.path().join("escape.yaml")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("escaped-dir")).unwrap();
    let (code, _, stderr) = validate(root.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("escape.yaml: symlink points outside the manifest root"), "{stderr}");
    assert!(stderr.contains("escaped-dir: symlink points outside the manifest root"), "{stderr}");
    // A symlink that stays inside the root is followed, and what it reaches a second
    // time (or in a loop) is read once.
    let inside = tempfile::tempdir().unwrap();
    fs::create_dir(inside.path().join("real")).unwrap();
    fs::write(inside.path().join("real/app.yaml"), "kind: MarathonApp\nspec: {id: /x, cmd: sleep}\n")
        .unwrap();
    std::os::unix::fs::symlink(inside.path().join("real"), inside.path().join("link")).unwrap();
    std::os::unix::fs::symlink(inside.path(), inside.path().join("real/loop")).unwrap();
    let (code, stdout, stderr) = validate(inside.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 apps, 0 jobs"), "{stdout}");
}

#[test]
fn oversized_and_binary_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let big = fs::File::create(tmp.path().join("huge.yaml")).unwrap();
    big.set_len(mesosync::source::MAX_FILE_BYTES + 1).unwrap();
    fs::write(tmp.path().join("garbage.yml"), [0xff, 0xfe, 0x00, 0x80, 0x81]).unwrap();
    let (code, _, stderr) = validate(tmp.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("huge.yaml: file is 1048577 bytes, over the 1048576 byte limit"), "{stderr}");
    assert!(stderr.contains("garbage.yml: is not UTF-8 text"), "{stderr}");
}

#[test]
fn a_missing_directory_is_an_error() {
    let (code, _, stderr) = validate(Path::new("/nonexistent/manifests"));
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/manifests: cannot read the manifest directory"), "{stderr}");
}

#[test]
fn the_shipped_kolla_manifests_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let (code, stdout, stderr) = validate(&dir);
    assert_eq!(code, 0, "{stderr}");
    let (key, path) = super::harness::demo_key_env();
    let options = mesosync::source::LoadOptions { env: vec![(key.into(), path)], ..Default::default() };
    let state = mesosync::source::load_dir_with(&dir, &options).unwrap();
    assert!(state.apps.len() >= 15 && state.jobs.len() >= 8, "{stdout}");
    assert!(state.get(&mesosync::model::ObjectRef::app("/openstack/infra/mariadb")).is_some());
    assert!(state.apps.iter().all(|a| a.object.id.starts_with("/openstack/")));
}

/// A set of a values file, a template using it (app /a) and a plain manifest (app /b).
fn templated_set() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::write(root.join("values.yaml"), "mem: 64\n").unwrap();
    fs::write(root.join("a.yaml.j2"), "kind: MarathonApp\nspec: {id: /a, cmd: sleep, mem: {{ mem }}}\n")
        .unwrap();
    fs::write(root.join("b.yaml"), "kind: MarathonApp\nspec: {id: /b, cmd: sleep}\n").unwrap();
    tmp
}

#[test]
fn the_load_cache_sees_every_edit_and_every_error() {
    use mesosync::source::{LoadCache, LoadOptions, load_dir_cached, load_dir_with};
    let tmp = templated_set();
    let root = tmp.path();
    let options = LoadOptions::default();
    let mut cache = LoadCache::default();
    let first = load_dir_cached(root, &options, &mut cache).unwrap();
    assert_eq!(first, load_dir_with(root, &options).unwrap());
    // Same bytes: same result from the cache.
    assert_eq!(load_dir_cached(root, &options, &mut cache).unwrap(), first);
    // An edit of the same length (same size, maybe the same mtime tick) is seen.
    fs::write(root.join("b.yaml"), "kind: MarathonApp\nspec: {id: /b, cmd: slept}\n").unwrap();
    let edited = load_dir_cached(root, &options, &mut cache).unwrap();
    assert_eq!(edited.apps[1].spec.value()["cmd"], "slept");
    // A values change re-renders the templates.
    fs::write(root.join("values.yaml"), "mem: 96\n").unwrap();
    assert_eq!(load_dir_cached(root, &options, &mut cache).unwrap().apps[0].spec.value()["mem"], 96);
    // A broken file fails the load every time, cached or not; fixing it recovers.
    fs::write(root.join("b.yaml"), "kind: MarathonApp\nspec: {id: /b, cmd: sleep, cpu: 1}\n").unwrap();
    for _ in 0..2 {
        let errors = load_dir_cached(root, &options, &mut cache).unwrap_err();
        assert!(errors.to_string().contains("unknown field `cpu`"), "{errors}");
    }
    fs::remove_file(root.join("b.yaml")).unwrap();
    assert_eq!(load_dir_cached(root, &options, &mut cache).unwrap().apps.len(), 1);
}

/// What a controller keys its reconciles on (issue 20): the input fingerprint said of
/// a directory without loading it is the one a load of it reports, stays with the same
/// bytes rewritten, and moves with every change of a file's bytes or path or of the
/// template values.
#[test]
fn the_input_fingerprint_is_the_one_a_load_reads_and_moves_with_every_change() {
    use mesosync::source::{LoadCache, LoadOptions, input_fingerprint, load_dir_keyed};
    let tmp = templated_set();
    let root = tmp.path();
    let options = LoadOptions::default();
    let mut cache = LoadCache::default();
    let loaded = |cache: &mut LoadCache| load_dir_keyed(root, &options, cache).unwrap().1;
    let first = loaded(&mut cache);
    assert_eq!(input_fingerprint(root, &options), Some(first));
    // The same bytes written again, and a cached load: the same input.
    fs::write(root.join("b.yaml"), fs::read(root.join("b.yaml")).unwrap()).unwrap();
    assert_eq!(loaded(&mut cache), first);
    assert_eq!(input_fingerprint(root, &options), Some(first));
    let mut seen = vec![first];
    let mut changed = |what: &str, cache: &mut LoadCache| {
        let now = input_fingerprint(root, &options).unwrap();
        assert!(!seen.contains(&now), "{what}: the fingerprint did not move");
        assert_eq!(loaded(cache), now, "{what}: the load read another input");
        seen.push(now);
    };
    fs::write(root.join("b.yaml"), "kind: MarathonApp\nspec: {id: /b, cmd: slept}\n").unwrap();
    changed("an edit of the same length", &mut cache);
    fs::rename(root.join("b.yaml"), root.join("c.yaml")).unwrap();
    changed("a rename", &mut cache);
    fs::write(root.join("values.yaml"), "mem: 96\n").unwrap();
    changed("a values change", &mut cache);
    let with_var =
        LoadOptions { env: vec![("MESOSYNC_VAR_MEM".into(), "128".into())], ..LoadOptions::default() };
    assert_ne!(input_fingerprint(root, &with_var), input_fingerprint(root, &options), "a template variable");
    // A checkout being rewritten has no fingerprint (a load would not read it).
    fs::create_dir(root.join(".git")).unwrap();
    fs::write(root.join(".git/index.lock"), "").unwrap();
    assert_eq!(input_fingerprint(root, &options), None);
}

#[test]
fn run_once_jobs_say_which_schedule_to_use() {
    check_bad_fixture("run_once");
}
