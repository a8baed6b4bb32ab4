//! Tidy rules for `node/src` (the appliance library; `bin/` is the tools and not scanned):
//!
//! 1. No import circle between the top-level modules (`config`, `runtime`, `gateway`,
//!    `sequencing`, `shard`, `observe`, `appliance`, `msg`): every `crate::...` path in a
//!    module's files is an edge; a strongly connected set of two or more modules fails.
//! 2. `config` is a leaf: it names no other module of the crate.
//! 3. One clock seam: `Instant::now`, `SystemTime::now`, `quanta` and `rdtsc` appear only in
//!    `runtime/clock.rs`.
//! 4. One wire → engine conversion, where the shard applies a record: a request keeps the
//!    log's form (`tpx_wire::log_record::Input`) through `gateway/`, `msg.rs` and
//!    `sequencing/`, which name none of the engine's input types or conversions.
//!
//! Comments are skipped (a doc link is not a dependency). Each scanner is also run on a planted
//! sample, so a scanner that silently finds nothing fails here too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `node/src`, or the tree `TIDY_NODE_SRC` names (to run the rules on another checkout, e.g.
/// the tree before the restructure: `TIDY_NODE_SRC=/tmp/old/node/src cargo test -p tpx-node
/// --test tidy`).
fn src_dir() -> PathBuf {
    match std::env::var_os("TIDY_NODE_SRC") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// Every `.rs` file under `dir`, as (path relative to `src`, text); `bin/` left out.
fn sources(src: &Path) -> Vec<(String, String)> {
    fn walk(src: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if p.is_dir() {
                if rel != "bin" {
                    walk(src, &p, out);
                }
            } else if rel.ends_with(".rs") {
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, src, &mut out);
    out
}

/// The code of a file without comments: `//` to the end of a line (outside string literals)
/// and `/* ... */` blocks.
fn strip_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else {
            if c == b'"' && !(i > 0 && b[i - 1] == b'\'') {
                in_str = true;
            }
            out.push(c as char);
            i += 1;
        }
    }
    out
}

/// The top-level module a file belongs to (`gateway/io.rs` → `gateway`, `msg.rs` → `msg`);
/// `None` for `lib.rs`.
fn module_of(rel: &str) -> Option<String> {
    if rel == "lib.rs" {
        return None;
    }
    let first = rel.split('/').next().unwrap();
    Some(first.trim_end_matches(".rs").to_string())
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules a piece of code names through `crate::` paths (also inside
/// `use crate::{a::X, b}` groups).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(k) = rest.find("crate::") {
        let before = rest[..k].chars().last();
        let after = &rest[k + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `tpx_crate::` and the like
        }
        if let Some(group) = after.strip_prefix('{') {
            // Split the group's top level on commas.
            let mut depth = 0usize;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident_at(group[start..i].trim_start()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident_at(group[start..i].trim_start()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident_at(after));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Module → the other top-level modules it names.
fn graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.iter().filter_map(|(r, _)| module_of(r)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let Some(m) = module_of(rel) else { continue };
        let deps = g.entry(m.clone()).or_default();
        for d in crate_refs(&strip_comments(text)) {
            if d != m && modules.contains(&d) {
                deps.insert(d);
            }
        }
    }
    g
}

/// The strongly connected sets of two or more modules (Tarjan).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(lw));
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(iw));
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    set.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    self.out.push(set);
                }
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// The file that alone may read a clock.
const CLOCK_FILE: &str = "runtime/clock.rs";
const CLOCK_TOKENS: [&str; 4] = ["Instant::now", "SystemTime::now", "quanta", "rdtsc"];

/// `(file, line number, token)` of every clock read outside the clock file.
fn clock_reads(files: &[(String, String)]) -> Vec<(String, usize, &'static str)> {
    let mut out = Vec::new();
    for (rel, text) in files {
        if rel == CLOCK_FILE {
            continue;
        }
        for (n, line) in strip_comments(text).lines().enumerate() {
            for t in CLOCK_TOKENS {
                if line.contains(t) {
                    out.push((rel.clone(), n + 1, t));
                }
            }
        }
    }
    out
}

/// Where a request must keep the log's form, and the engine names that would convert it.
const LOG_FORM_PLACES: [&str; 3] = ["gateway/", "sequencing/", "msg.rs"];
const ENGINE_FORMS: [&str; 7] = [
    "EngineInput",
    "RiskCommand",
    "NewOrder",
    "Command::",
    "engine_input",
    "command_of",
    "risk_command_of",
];

/// `(file, line number, token)` of every engine input form named where a request keeps the
/// log's form (a token counts only at the start of an identifier).
fn engine_forms(files: &[(String, String)]) -> Vec<(String, usize, &'static str)> {
    let mut out = Vec::new();
    for (rel, text) in files {
        if !LOG_FORM_PLACES.iter().any(|p| rel.starts_with(p)) {
            continue;
        }
        for (n, line) in strip_comments(text).lines().enumerate() {
            for t in ENGINE_FORMS {
                let hit = line.match_indices(t).any(|(k, _)| {
                    !line[..k]
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                if hit {
                    out.push((rel.clone(), n + 1, t));
                }
            }
        }
    }
    out
}

#[test]
fn requests_keep_the_log_form_until_the_shard() {
    let files = sources(&src_dir());
    let found = engine_forms(&files);
    assert!(
        found.is_empty(),
        "engine input forms before the shard (the shard converts, `shard/apply.rs`): {found:?}"
    );
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let g = graph(&sources(&src_dir()));
    assert!(g.len() >= 6, "found the modules: {:?}", g.keys());
    let c = circles(&g);
    assert!(
        c.is_empty(),
        "import circles in node/src: {c:?}\ngraph: {g:#?}"
    );
}

#[test]
fn config_is_a_leaf() {
    let g = graph(&sources(&src_dir()));
    let deps = g.get("config").expect("a config module");
    assert!(deps.is_empty(), "config imports {deps:?}");
}

#[test]
fn only_the_clock_module_reads_a_clock() {
    let files = sources(&src_dir());
    assert!(files.iter().any(|(r, _)| r == CLOCK_FILE));
    let reads = clock_reads(&files);
    assert!(
        reads.is_empty(),
        "clock reads outside {CLOCK_FILE} (take `now` from the clock module): {reads:?}"
    );
}

#[test]
fn the_scanners_catch_what_is_planted() {
    // A planted circle: a → b → c → a, and d → a outside it.
    let files = vec![
        ("a.rs".to_string(), "use crate::b::X;".to_string()),
        (
            "b/mod.rs".to_string(),
            "fn f() { crate::c::g(); }".to_string(),
        ),
        (
            "c/x.rs".to_string(),
            "use crate::{msg, a::Y};\n// crate::d::Z only in a comment".to_string(),
        ),
        ("d.rs".to_string(), "use crate::a;".to_string()),
        ("msg.rs".to_string(), String::new()),
    ];
    let g = graph(&files);
    assert_eq!(g["c"], BTreeSet::from(["a".to_string(), "msg".to_string()]));
    assert_eq!(
        circles(&g),
        vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]
    );
    // A planted clock read in a hot-path file; comments and the clock file do not count.
    let files = vec![
        (
            "shard/stage.rs".to_string(),
            "fn step() {\n    // Instant::now() in a comment\n    let t = std::time::Instant::now();\n}"
                .to_string(),
        ),
        (
            CLOCK_FILE.to_string(),
            "pub fn now() { Instant::now(); }".to_string(),
        ),
        (
            "observe/x.rs".to_string(),
            "let s = \"a // b\"; let c = quanta::Clock::new();".to_string(),
        ),
    ];
    assert_eq!(
        clock_reads(&files),
        vec![
            ("shard/stage.rs".to_string(), 3, "Instant::now"),
            ("observe/x.rs".to_string(), 1, "quanta"),
        ]
    );
    // A planted conversion in the gateway; the shard's own and a longer name do not count.
    let files = vec![
        (
            "gateway/session/requests.rs".to_string(),
            "// EngineInput in a comment
let c = Command::NewOrder(o);
let k = ClientCommand::X;"
                .to_string(),
        ),
        (
            "shard/apply.rs".to_string(),
            "let i = engine_input(&r.input, a);".to_string(),
        ),
    ];
    assert_eq!(
        engine_forms(&files),
        vec![
            ("gateway/session/requests.rs".to_string(), 2, "NewOrder"),
            ("gateway/session/requests.rs".to_string(), 2, "Command::"),
        ]
    );
}
