//! Jinja templates (`*.yaml.j2`) with values files and `MESOSYNC_VAR_*`, as kolla-mesos
//! rendered its services: rendering, overlays, strict undefined variables, provenance.

use std::path::{Path, PathBuf};
use std::process::Command;

use mesosync::source::{LoadOptions, load_dir_with};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

#[test]
fn templates_render_with_the_root_values_file() {
    let state = load_dir_with(&fixtures().join("root"), &LoadOptions::default()).unwrap();
    let ids: Vec<&str> = state.apps.iter().map(|a| a.object.id.as_str()).collect();
    assert_eq!(ids, ["/openstack/keystone-api", "/openstack/memcached"]);
    let keystone = &state.apps[0];
    assert_eq!(
        keystone.spec.value()["container"]["docker"]["image"],
        "operator.local:5000/kollaglue/centos-binary-keystone-api:2.0.0"
    );
    assert_eq!(keystone.spec.value()["cpus"], 0.3);
    // Provenance points into the template, at the line that writes the value.
    let image = keystone.locate("/container/docker/image");
    assert!(image.file.ends_with("apps.yaml.j2"), "{image}");
    assert_eq!(image.line, 13);
    assert_eq!(keystone.locate("/mem").line, 8);
    assert_eq!(state.apps[1].locate("/mem").line, 8, "both loop iterations point at the loop body");
}

#[test]
fn overlays_and_environment_win_over_defaults() {
    let options = LoadOptions {
        values_files: vec![fixtures().join("dev.yaml")],
        env: vec![("MESOSYNC_VAR_REGISTRY".into(), "registry.dev:5000".into()), ("OTHER".into(), "x".into())],
        ..LoadOptions::default()
    };
    let state = load_dir_with(&fixtures().join("root"), &options).unwrap();
    let keystone = &state.apps[0];
    assert_eq!(keystone.spec.value()["instances"], 3, "overlay value");
    assert_eq!(keystone.spec.value()["cpus"], 0.3, "maps merge: the default cpus stays");
    assert_eq!(
        keystone.spec.value()["container"]["docker"]["image"],
        "registry.dev:5000/kollaglue/centos-binary-keystone-api:3.0.0-dev"
    );
}

#[test]
fn undefined_variables_are_errors_naming_the_template_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_mesosync"))
        .arg("validate")
        .arg(fixtures().join("undefined"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("undefined/app.yaml.j2:5:1: undefined variable in template"), "{stderr}");
}

#[test]
fn validate_takes_values_files() {
    let out = Command::new(env!("CARGO_BIN_EXE_mesosync"))
        .arg("validate")
        .arg(fixtures().join("root"))
        .arg("--values")
        .arg(fixtures().join("dev.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 apps, 0 jobs"));
}

#[test]
fn the_kolla_manifests_render_for_a_second_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let default = load_dir_with(&root.join("manifests"), &LoadOptions::default()).unwrap();
    let dev = LoadOptions {
        values_files: vec![root.join("environments/dev.yaml")],
        env: vec![("MESOSYNC_VAR_DATABASE_PASSWORD".into(), "it's \"quoted\"".into())],
        ..LoadOptions::default()
    };
    let dev = load_dir_with(&root.join("manifests"), &dev).unwrap();
    assert_eq!(default.apps.len(), dev.apps.len());
    assert_eq!(default.jobs.len(), dev.jobs.len());
    let keystone = mesosync::model::ObjectRef::app("/openstack/keystone/keystone-api");
    let image = |s: &mesosync::model::DesiredState| {
        s.get(&keystone).unwrap().spec.value()["container"]["docker"]["image"].clone()
    };
    assert!(image(&default).as_str().unwrap().ends_with(":2.0.0"));
    assert!(image(&dev).as_str().unwrap().ends_with(":3.0.0-dev"), "{}", image(&dev));
    // A value with quotes survives templating intact (`| tojson`).
    let job = dev.get(&mesosync::model::ObjectRef::job("openstack-keystone-db-create")).unwrap();
    let spec = job.spec.value();
    let vars = spec["environmentVariables"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["value"] == "it's \"quoted\""), "{vars:?}");
}
