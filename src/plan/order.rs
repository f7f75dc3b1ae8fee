//! Ordering: one graph over every object — Marathon `dependencies`, Chronos `parents`,
//! `sync.dependsOn` (cross-system) — cut into waves. `sync.wave` groups come first
//! (lower first); inside a group an action's wave is one more than the latest wave of
//! the writes it depends on (topological levels). Deletes come after everything else,
//! children before parents. Only writes take a wave of their own: an unchanged object
//! is already in place, so no wave waits for it — a write names it in `awaits`
//! instead, and apply checks it is ready (an app Healthy) before writing. Cycles (rejected by the loader
//! anyway) are cut where they close, never followed forever. Each write's `barrier` is
//! its group's first wave: apply starts it once every write below that wave and its
//! own `depends_on` ended, so inside a group a write waits for its dependencies only.

use std::collections::{BTreeMap, HashMap};

use super::{Action, ActionKind};
use crate::model::ObjectRef;

/// One action plus what ordering needs to know about it: a node of the graph.
pub(super) struct Node {
    pub action: Action,
    /// Objects it waits for (desired dependencies; for a delete: its live children).
    pub edges: Vec<ObjectRef>,
    /// `sync.wave` (0 when unset).
    pub sync_wave: i64,
}

/// Assign waves and `depends_on`, and sort by (wave, deletes last, object). Linear in
/// the number of nodes and edges (plus the final sort).
pub(super) fn order(planned: Vec<Node>) -> Vec<Action> {
    let index: HashMap<(bool, ObjectRef), usize> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.action.kind() == ActionKind::Delete, p.action.object.clone()), i))
        .collect();
    let n = planned.len();
    let is_write = |i: usize| planned[i].action.is_write();
    let is_delete = |i: usize| planned[i].action.kind() == ActionKind::Delete;
    // Edges between writes only: for a create/update its dependencies that are
    // creates/updates too; for a delete the deletes of its children.
    let edges: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            if !is_write(i) {
                return Vec::new();
            }
            let mut e: Vec<usize> = planned[i]
                .edges
                .iter()
                .filter_map(|r| index.get(&(is_delete(i), r.clone())).copied())
                .filter(|&j| j != i && is_write(j))
                .collect();
            e.sort_unstable();
            e.dedup();
            e
        })
        .collect();

    // Dependencies in the plan that are not written: in place, to be ready.
    let mut awaits: Vec<Vec<ObjectRef>> = (0..n)
        .map(|i| {
            if !is_write(i) || is_delete(i) {
                return Vec::new();
            }
            let mut a: Vec<ObjectRef> = planned[i]
                .edges
                .iter()
                .filter(|r| index.get(&(false, (*r).clone())).is_some_and(|&j| j != i && !is_write(j)))
                .cloned()
                .collect();
            a.sort();
            a.dedup();
            a
        })
        .collect();

    let mut wave = vec![0usize; n];
    let mut barrier = vec![0usize; n];
    let mut next_base = 0usize;
    // Groups of writes that are not deletes, by sync.wave; deletes last.
    let mut groups: BTreeMap<(bool, i64), Vec<usize>> = BTreeMap::new();
    for i in (0..n).filter(|&i| is_write(i)) {
        let key = if is_delete(i) { (true, 0) } else { (false, planned[i].sync_wave) };
        groups.entry(key).or_default().push(i);
    }
    // Which group each write is in, so membership is a lookup, not a scan.
    let mut group_of = vec![usize::MAX; n];
    for (g, members) in groups.values().enumerate() {
        for &i in members {
            group_of[i] = g;
        }
    }
    let mut level: Vec<Option<usize>> = vec![None; n];
    let mut on_stack = vec![false; n];
    for (g, members) in groups.values().enumerate() {
        let mut top = 0;
        for &i in members {
            top = top.max(depth(i, g, &edges, &group_of, &mut level, &mut on_stack));
        }
        for &i in members {
            wave[i] = next_base + level[i].unwrap_or(0);
            barrier[i] = next_base;
        }
        next_base += top + 1;
    }

    let mut actions: Vec<(usize, bool, Action)> = planned
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut action = p.action;
            action.wave = wave[i];
            action.barrier = barrier[i];
            (i, action.kind() == ActionKind::Delete, action)
        })
        .collect();
    let refs: Vec<ObjectRef> = actions.iter().map(|(_, _, a)| a.object.clone()).collect();
    for (i, _, action) in &mut actions {
        // An edge against the wave order (a cycle cut, or a dependency on a later
        // sync.wave) cannot be waited for: it is dropped rather than deadlock apply.
        let mut deps: Vec<ObjectRef> =
            edges[*i].iter().filter(|&&j| wave[j] < wave[*i]).map(|&j| refs[j].clone()).collect();
        deps.sort();
        action.depends_on = deps;
        action.awaits = std::mem::take(&mut awaits[*i]);
    }
    actions.sort_by(|a, b| (a.2.wave, a.1, &a.2.object).cmp(&(b.2.wave, b.1, &b.2.object)));
    actions.into_iter().map(|(_, _, a)| a).collect()
}

/// The level of `i` inside its group `g`: 0 without dependencies in the group, else
/// one more than the deepest one. Memoized; a back edge (cycle) counts as no edge.
fn depth(
    i: usize,
    g: usize,
    edges: &[Vec<usize>],
    group_of: &[usize],
    level: &mut [Option<usize>],
    on_stack: &mut [bool],
) -> usize {
    if let Some(l) = level[i] {
        return l;
    }
    on_stack[i] = true;
    let mut l = 0;
    for &j in &edges[i] {
        if on_stack[j] || group_of[j] != g {
            continue;
        }
        l = l.max(depth(j, g, edges, group_of, level, on_stack) + 1);
    }
    on_stack[i] = false;
    level[i] = Some(l);
    l
}
