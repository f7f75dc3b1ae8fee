//! The module layering of ARCHITECTURE.md, checked on the source: the top-level modules
//! of `src/` (outside their unit tests) import each other without a cycle, and the
//! boundaries the architecture names hold (`model` imports no module above it;
//! `runtime` and `server` do not import each other; `status` is a leaf for both).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module → module it imports → where (the first `file:line`).
type Edges = BTreeMap<String, BTreeMap<String, String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<module>` a line of code (not a comment) names.
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    code.match_indices("crate::")
        .map(|(at, m)| {
            code[at + m.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        })
        .collect()
}

fn edges() -> Edges {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top = |p: &Path| -> String {
        let rel = p.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> =
        files.iter().map(|f| top(f)).filter(|m| m != "main" && m != "lib").collect();
    let mut edges = Edges::new();
    for file in &files {
        let from = top(file);
        if !modules.contains(&from) {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        // Unit tests may reach across layers; the code they test may not.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            for to in named_modules(line) {
                if to != from && modules.contains(&to) {
                    let at = format!("{}:{}", file.strip_prefix(&src).unwrap().display(), n + 1);
                    edges.entry(from.clone()).or_default().entry(to).or_insert(at);
                }
            }
        }
    }
    edges
}

/// A path of imports from `from` back to `to`, if there is one.
fn path(edges: &Edges, from: &str, to: &str, seen: &mut BTreeSet<String>) -> Option<Vec<String>> {
    for (next, at) in edges.get(from).into_iter().flatten() {
        if next == to {
            return Some(vec![format!("{from} -> {next} ({at})")]);
        }
        if seen.insert(next.clone()) {
            if let Some(mut rest) = path(edges, next, to, seen) {
                rest.insert(0, format!("{from} -> {next} ({at})"));
                return Some(rest);
            }
        }
    }
    None
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let edges = edges();
    assert!(edges.len() > 10, "the source walk found the modules: {:?}", edges.keys());
    for from in edges.keys() {
        if let Some(cycle) = path(&edges, from, from, &mut BTreeSet::new()) {
            panic!("import cycle:\n{}", cycle.join("\n"));
        }
    }
}

#[test]
fn the_named_boundaries_hold() {
    let edges = edges();
    let forbidden: &[(&str, &[&str])] = &[
        (
            "model",
            &[
                "normalize",
                "system",
                "diff",
                "plan",
                "source",
                "client",
                "apply",
                "reconcile",
                "runtime",
                "server",
            ],
        ),
        ("system", &["source", "plan", "apply", "client", "reconcile", "runtime"]),
        ("runtime", &["server", "daemon"]),
        ("server", &["runtime", "daemon"]),
        ("status", &["runtime", "server", "daemon"]),
        ("ha", &["runtime", "cli"]),
        ("emulator", &["model", "normalize", "system"]),
    ];
    let mut broken = Vec::new();
    for (from, targets) in forbidden {
        for to in *targets {
            if let Some(at) = edges.get(*from).and_then(|e| e.get(*to)) {
                broken.push(format!("{from} must not import {to}: {at}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    // The check sees real imports: `apply` uses `client`.
    assert!(edges["apply"].contains_key("client"));
}
