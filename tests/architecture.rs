//! The layout ARCHITECTURE.md describes holds: the modules of
//! `flyte-runtime` import each other in no loop but the one between the run
//! state and its live cells, inside `state/`; its folders import each other
//! in no loop at all (each has its place in one order); and it never names
//! SQLite (it talks to stores through `RunStore`; `flyte-sqlite` is named
//! only where the default store is opened); spans, the progress board and
//! the store's recorder are listeners on the run's sink. In `flyte-core`, the store's
//! capabilities and the fleet's work queue do not import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, by module path (`execution::action`).
fn modules(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(dir).unwrap().with_extension("");
                let mut name: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if name.last().is_some_and(|n| n == "mod") {
                    name.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                found.insert(name.join("::"), text);
            }
        }
    }
    found
}

/// The modules `text` names as `crate::a::b::...` in its code (a link in a
/// comment is not an import), resolved to the longest known module path.
fn imports(text: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        for k in (1..=parts.len()).rev() {
            let candidate = parts[..k].join("::");
            if known.contains_key(&candidate) {
                out.insert(candidate);
                break;
            }
        }
    }
    out
}

/// The sets of modules that import each other in a loop (Tarjan).
fn loops(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for next in &w.edges[v] {
            let next = next.as_str();
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[v].min(w.low[next]);
                w.low.insert(v, low);
            } else if w.stack.contains(&next) {
                let low = w.low[v].min(w.index[next]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = BTreeSet::new();
            while let Some(top) = w.stack.pop() {
                component.insert(top.to_owned());
                if top == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

fn runtime_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("flyte-runtime/src")
}

#[test]
fn the_only_module_loop_is_the_run_state_and_its_cells() {
    let modules = modules(&runtime_src());
    assert!(modules.contains_key("execution::action"), "layout moved?");
    let edges: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(name, text)| {
            let mut deps = imports(text, &modules);
            deps.remove(name);
            (name.clone(), deps)
        })
        .collect();
    let found = loops(&edges);
    for component in &found {
        assert!(
            component.iter().all(|m| m.starts_with("state::")),
            "modules import each other in a loop outside state/: {component:?}"
        );
    }
}

/// The folder of a module (`execution` for `execution::action`); a file at
/// the root (`registry`) is a folder of its own.
fn folder(module: &str) -> String {
    module.split("::").next().unwrap_or(module).to_owned()
}

/// Folders, not only files, stack: no folder imports one that imports it
/// back, however indirectly, so each has a place in one order from the
/// user's entry points (`builders`) down to what a call is (`task`) and
/// where sync bodies run (`threads`).
#[test]
fn no_folder_imports_one_above_it() {
    let modules = modules(&runtime_src());
    assert!(modules.contains_key("task::call"), "layout moved?");
    assert_no_folder_loop("flyte-runtime", &modules);
}

/// The same in flyte-core, whose store is a folder of capabilities that
/// knows nothing of the work queue (which uses the store's words) or of
/// `backend` (which names both): the store and the queue do not import
/// each other.
#[test]
fn flyte_cores_store_and_queue_do_not_import_each_other() {
    let modules = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flyte-core/src"));
    assert!(modules.contains_key("store::capabilities"), "layout moved?");
    assert_no_folder_loop("flyte-core", &modules);
    for (name, text) in &modules {
        if folder(name) == "store" {
            let deps = imports(text, &modules);
            assert!(
                !deps.iter().any(|d| d == "queue" || d == "backend"),
                "{name} imports {deps:?}: the store's capabilities must not know the queue"
            );
        }
    }
}

/// Fails, naming the imports, when folders of `crate_name` import each other
/// in a loop.
fn assert_no_folder_loop(crate_name: &str, modules: &BTreeMap<String, String>) {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut why: BTreeMap<(String, String), String> = BTreeMap::new();
    for (name, text) in modules {
        let from = folder(name);
        let deps = edges.entry(from.clone()).or_default();
        for dep in imports(text, modules) {
            let to = folder(&dep);
            if to != from {
                deps.insert(to.clone());
                why.entry((from.clone(), to))
                    .or_insert(format!("{name} imports {dep}"));
            }
        }
    }
    for deps in edges.clone().into_values() {
        for dep in deps {
            edges.entry(dep).or_default();
        }
    }
    let found = loops(&edges);
    let explained: Vec<String> = found
        .iter()
        .flat_map(|component| {
            why.iter()
                .filter(|((a, b), _)| component.contains(a) && component.contains(b))
                .map(|(_, how)| how.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        found.is_empty(),
        "{crate_name}: folders import each other in a loop: {found:?}\n{}",
        explained.join("\n")
    );
}

/// The sink is the one seam watchers use: only the spans listener makes
/// flyte's spans, and the progress board and the store's recorder know
/// the run through the sink's events, not the live tree.
#[test]
fn watchers_listen_on_the_sink() {
    let modules = modules(&runtime_src());
    assert!(modules.contains_key("watch::sink"), "layout moved?");
    for (name, text) in &modules {
        let makes_spans = ["info_span!", "debug_span!", "trace_span!"]
            .iter()
            .any(|m| text.contains(m));
        assert!(
            !makes_spans || name == "watch::spans",
            "{name} makes tracing spans: make them in watch::spans, a listener on the sink"
        );
    }
    for watcher in ["progress::board", "durability::recorder"] {
        let deps = imports(&modules[watcher], &modules);
        assert!(
            deps.iter()
                .all(|d| !d.starts_with("state::") && !d.starts_with("execution::")),
            "{watcher} imports {deps:?}: a watcher hears the run through watch::sink"
        );
    }
}

#[test]
fn the_runtime_never_names_sqlite() {
    for (name, text) in modules(&runtime_src()) {
        assert!(!text.contains("rusqlite"), "{name} names rusqlite");
        if name != "durability::store_at" && name != "durability::store" {
            assert!(
                !text.contains("flyte_sqlite"),
                "{name} names the SQLite store: go through RunStore"
            );
        }
    }
    let manifest = std::fs::read_to_string(runtime_src().join("../Cargo.toml"))
        .expect("the runtime's manifest");
    assert!(
        !manifest.contains("rusqlite"),
        "flyte-runtime depends on rusqlite"
    );
}
