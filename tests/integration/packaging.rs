//! What ships beside the binary: completions, man page, the example manifest for
//! running mesosync on Marathon.

use std::path::Path;
use std::process::Command;

fn mesosync(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mesosync")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn completions_know_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, script) = mesosync(&["completions", shell]);
        assert_eq!(code, 0);
        for sub in ["validate", "diff", "apply", "run", "import", "sandbox"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
}

#[test]
fn man_page_is_roff_with_the_commands() {
    let (code, page) = mesosync(&["man"]);
    assert_eq!(code, 0);
    assert!(page.contains(".TH mesosync 1"));
    assert!(page.contains("validate"));
}

#[test]
fn the_run_on_marathon_example_is_a_valid_manifest() {
    // The file alone: examples/ also holds CI recipes (examples/ci/*.yml), which are
    // YAML but not manifests.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mesosync-on-marathon.yaml");
    let (objects, errors) = mesosync::source::load_text(&path, &std::fs::read_to_string(&path).unwrap());
    assert!(errors.is_empty(), "{errors:?}");
    let app = objects.iter().find(|o| o.object == mesosync::model::ObjectRef::app("/ops/mesosync")).unwrap();
    assert_eq!(app.spec.value()["healthChecks"][0]["path"], "/healthz");
}
