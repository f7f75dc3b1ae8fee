//! Checks across documents: duplicate ids, references to undeclared objects, and
//! dependency cycles (over Marathon `dependencies`, Chronos `parents` and
//! `sync.dependsOn` together — one graph, as the planner orders them).

use std::collections::{BTreeMap, HashMap};

use super::LoadError;
use crate::model::{DesiredObject, ObjectKind, ObjectRef};

/// Remove duplicates from `objects` (reporting each, naming both places); the first
/// definition in path order is kept so that later checks still run.
pub fn dedupe(objects: Vec<DesiredObject>, errors: &mut Vec<LoadError>) -> Vec<DesiredObject> {
    let mut seen: HashMap<ObjectRef, usize> = HashMap::new();
    let mut kept: Vec<DesiredObject> = Vec::with_capacity(objects.len());
    for object in objects {
        if let Some(&first) = seen.get(&object.object) {
            let field = id_field(object.object.kind);
            let here = object.provenance.locate(&format!("/spec/{field}"));
            let there = kept[first].provenance.locate(&format!("/spec/{field}"));
            errors.push(LoadError {
                location: here,
                message: format!("duplicate {}: already defined at {there}", object.object),
            });
        } else {
            seen.insert(object.object.clone(), kept.len());
            kept.push(object);
        }
    }
    kept
}

fn id_field(kind: ObjectKind) -> &'static str {
    crate::system::of(kind).key_field()
}

/// Where a dependency of `object` on `target` is written.
fn reference_pointer(object: &DesiredObject, target: &ObjectRef) -> String {
    // Only on the error path: parsing the spec here is fine.
    let spec = object.spec.value();
    let member = crate::system::of(object.object.kind).dependency_field();
    let (field, list) = (format!("/spec/{member}"), spec.get(member));
    let same_system = target.kind == object.object.kind;
    if same_system {
        if let Some(i) = list
            .and_then(|l| l.as_array())
            .and_then(|l| l.iter().position(|v| v.as_str() == Some(&target.id)))
        {
            return format!("{field}/{i}");
        }
    }
    match object.sync.depends_on.iter().position(|d| d == &target.id) {
        Some(i) => format!("/sync/dependsOn/{i}"),
        None => field,
    }
}

/// Report references to objects no manifest declares.
pub fn check_references(objects: &[DesiredObject], errors: &mut Vec<LoadError>) {
    let declared: std::collections::HashSet<&ObjectRef> = objects.iter().map(|o| &o.object).collect();
    for object in objects {
        for dep in object.dependencies() {
            if !declared.contains(dep) {
                let pointer = reference_pointer(object, dep);
                let (what, why) = if pointer.starts_with("/spec/parents") {
                    ("parent", "Chronos 2.x refuses a job whose parents do not exist; 3.x hides it")
                } else {
                    ("dependency", "mesosync can only order objects a manifest declares")
                };
                errors.push(LoadError {
                    location: object.provenance.locate(&pointer),
                    message: format!(
                        "{what} {dep} of {} is not declared in any manifest ({why})",
                        object.object
                    ),
                });
            }
        }
    }
}

/// Report every dependency cycle once, as `a → b → a`, at the first object's edge.
pub fn check_cycles(objects: &[DesiredObject], errors: &mut Vec<LoadError>) {
    let index: BTreeMap<&ObjectRef, usize> =
        objects.iter().enumerate().map(|(i, o)| (&o.object, i)).collect();
    let edges: Vec<Vec<usize>> = objects
        .iter()
        .map(|o| o.dependencies().iter().filter_map(|d| index.get(d).copied()).collect())
        .collect();
    // Iterative three-colour DFS; `stack` holds the current path.
    let mut colour = vec![0u8; objects.len()]; // 0 new, 1 on path, 2 done
    for start in 0..objects.len() {
        if colour[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = edges[node].get(*next) {
                *next += 1;
                match colour[dep] {
                    0 => {
                        colour[dep] = 1;
                        stack.push((dep, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut names: Vec<String> =
                            stack[from..].iter().map(|(n, _)| objects[*n].object.to_string()).collect();
                        names.push(objects[dep].object.to_string());
                        let first = &objects[stack[from].0];
                        let next_ref = &objects[stack.get(from + 1).map_or(dep, |s| s.0)].object;
                        errors.push(LoadError {
                            location: first.provenance.locate(&reference_pointer(first, next_ref)),
                            message: format!("dependency cycle: {}", names.join(" → ")),
                        });
                    }
                    _ => {}
                }
            } else {
                colour[node] = 2;
                stack.pop();
            }
        }
    }
}
