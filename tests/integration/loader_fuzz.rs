//! The manifest loader never panics, whatever bytes it is fed: random text, random
//! bytes, mutated real manifests, and pathological nesting.

use std::path::Path;

use proptest::prelude::*;

fn real_manifests() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "manifests/keystone/keystone-api.yaml",
        "manifests/nova/bootstrap.yaml",
        "tests/fixtures/load/good/apps.yaml",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
    .collect()
}

fn load(name: &str, text: &str) {
    let (objects, errors) = mesosync::source::load_text(Path::new(name), text);
    // Every error names the file it is about.
    for e in &errors {
        assert!(e.to_string().starts_with(name), "{e}");
    }
    // A document is either loaded or reported, never silently half-taken.
    for o in &objects {
        assert!(!o.object.id.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        load("fuzz.yaml", &text);
        load("fuzz.json", &text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "(kind|spec|sync|id|name|cpus|: |- |\\[|\\]|\\{|\\}|,|\\n|  |\"|'|&a|\\*a|---|#|!!str|[0-9.]{1,4}){0,80}") {
        load("fuzz.yaml", &text);
    }

    #[test]
    fn mutated_manifests_never_panic(index in 0usize..3, cuts in proptest::collection::vec((0usize..4000, 0usize..40, any::<u8>()), 1..6)) {
        let sources = real_manifests();
        let mut bytes = sources[index % sources.len()].clone().into_bytes();
        for (at, len, byte) in cuts {
            if bytes.is_empty() { break; }
            let at = at % bytes.len();
            let end = (at + len).min(bytes.len());
            bytes.splice(at..end, std::iter::once(byte));
        }
        let text = String::from_utf8_lossy(&bytes);
        load("mutated.yaml", &text);
        load("mutated.yaml.j2", &text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [1_000, 100_000] {
        let text = format!("kind: MarathonApp\nspec: {}{}", "[".repeat(depth), "]".repeat(depth));
        let (objects, errors) = mesosync::source::load_text(Path::new("deep.yaml"), &text);
        assert!(objects.is_empty());
        assert!(!errors.is_empty());
    }
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 { "a".to_string() } else { format!("b{}", i - 1) };
        text.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let (objects, errors) = mesosync::source::load_text(Path::new("bomb.yaml"), &text);
    assert!(objects.is_empty());
    assert!(!errors.is_empty());
}
