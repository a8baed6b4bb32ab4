//! Keeps `docs/PROTOCOL.md` true: every offset table, enum table, the template table and every
//! hex example in it is generated here from the code and compared with the document.
//!
//! After changing a layout or an example, regenerate the blocks with
//! `TPX_BLESS=1 cargo test -p tpx-wire --test protocol_doc` and review the diff.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use tpx_wire::catalog::{examples, ENUMS, LAYOUTS};
use tpx_wire::codec::Layout;
use tpx_wire::header::{schema, template, SCHEMA_VERSION};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");

fn schema_name(id: u16) -> &'static str {
    match id {
        schema::ORDER_ENTRY => "order entry",
        schema::INPUT_LOG => "input log",
        schema::MARKET_DATA => "market data",
        _ => "?",
    }
}

fn render_layout(l: &Layout) -> String {
    let variable = matches!(l.template_id, template::LOG_RECORD | template::PACKET);
    let mut s = String::new();
    s.push_str("| offset | size | field | type | unit / valid values |\n|---:|---:|---|---|---|\n");
    let length = if variable {
        format!("{} + the rest", l.size)
    } else {
        l.size.to_string()
    };
    writeln!(
        s,
        "| 0 | 8 | header | Header | length = {length}, template_id = {}, schema_id = {}, version = {SCHEMA_VERSION} |",
        l.template_id, l.schema_id
    )
    .unwrap();
    let mut rows: Vec<(usize, String)> = Vec::new();
    for f in l.fields {
        let mut doc = f.doc.trim().to_string();
        if f.rule == "nonzero" {
            doc.push_str(" Must be nonzero.");
        }
        let size = if f.size == 0 {
            "rest".to_string()
        } else {
            f.size.to_string()
        };
        rows.push((
            f.offset,
            format!("| {} | {size} | {} | {} | {doc} |", f.offset, f.name, f.ty),
        ));
    }
    for &(off, len) in l.reserved {
        rows.push((
            off,
            format!("| {off} | {len} | reserved | | must be zero |"),
        ));
    }
    rows.sort_by_key(|r| r.0);
    for (_, r) in rows {
        s.push_str(&r);
        s.push('\n');
    }
    s
}

fn render_enum(name: &str) -> Option<String> {
    let e = ENUMS.iter().find(|e| e.name == name)?;
    let mut s = String::from("| value | name | meaning |\n|---:|---|---|\n");
    for (n, v, doc) in e.variants {
        writeln!(s, "| {v} | {n} | {} |", doc.trim()).unwrap();
    }
    Some(s)
}

fn render_templates() -> String {
    let mut s =
        String::from("| template_id | message | schema | size (bytes) |\n|---:|---|---|---:|\n");
    let mut ls: Vec<&Layout> = LAYOUTS.iter().collect();
    ls.sort_by_key(|l| l.template_id);
    for l in ls {
        let size = match l.template_id {
            template::LOG_RECORD | template::PACKET => format!("{} + rest", l.size),
            _ => l.size.to_string(),
        };
        writeln!(
            s,
            "| {} | {} | {} ({}) | {size} |",
            l.template_id,
            l.name,
            l.schema_id,
            schema_name(l.schema_id)
        )
        .unwrap();
    }
    s
}

fn render_hex(bytes: &[u8]) -> String {
    let mut s = String::from("```text\n");
    for (i, line) in bytes.chunks(16).enumerate() {
        write!(s, "{:04x}:", i * 16).unwrap();
        for (j, b) in line.iter().enumerate() {
            if j == 8 {
                s.push(' ');
            }
            write!(s, " {b:02x}").unwrap();
        }
        s.push('\n');
    }
    s.push_str("```\n");
    s
}

/// Parses the hex lines of a rendered example back to bytes (so the doc's hex is checked as
/// bytes too, not only as text).
fn parse_hex(block: &str) -> Vec<u8> {
    block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .flat_map(|l| {
            l.split_once(':')
                .map(|x| x.1)
                .unwrap_or("")
                .split_whitespace()
        })
        .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
        .collect()
}

fn render(key: &str) -> Option<String> {
    let (kind, arg) = key.split_once(':').unwrap_or((key, ""));
    match kind {
        "layout" => {
            let id: u16 = arg.parse().ok()?;
            LAYOUTS
                .iter()
                .find(|l| l.template_id == id)
                .map(render_layout)
        }
        "enum" => render_enum(arg),
        "templates" => Some(render_templates()),
        "example" => examples()
            .into_iter()
            .find(|(n, _)| *n == arg)
            .map(|(_, b)| render_hex(&b)),
        _ => None,
    }
}

/// `(key, start, end)` of each generated block: the text between the marker line and `<!-- /gen -->`.
fn blocks(doc: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = doc[pos..].find("<!-- gen:") {
        let open = pos + i;
        let key_end = open + doc[open..].find(" -->").expect("marker end");
        let key = doc[open + "<!-- gen:".len()..key_end].to_string();
        let start = key_end + " -->\n".len();
        let end = start + doc[start..].find("<!-- /gen -->").expect("closing marker");
        out.push((key, start, end));
        pos = end;
    }
    out
}

#[test]
fn protocol_md_matches_the_code() {
    let doc = std::fs::read_to_string(DOC).expect("docs/PROTOCOL.md");
    let bless = std::env::var_os("TPX_BLESS").is_some();
    let mut new_doc = String::new();
    let mut last = 0;
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (key, start, end) in blocks(&doc) {
        let want = render(&key).unwrap_or_else(|| panic!("unknown generated block {key}"));
        let have = &doc[start..end];
        if key.starts_with("example:") && !bless {
            let name = &key["example:".len()..];
            let bytes = parse_hex(have);
            let expected = examples().into_iter().find(|(n, _)| *n == name).unwrap().1;
            if bytes != expected {
                errors.push(format!(
                    "example {name}: the hex in the doc is not what the code encodes"
                ));
            }
        }
        if have != want {
            errors.push(format!(
                "block {key} differs:\n--- doc\n{have}--- code\n{want}"
            ));
        }
        new_doc.push_str(&doc[last..start]);
        new_doc.push_str(&want);
        last = end;
        seen.insert(key);
    }
    new_doc.push_str(&doc[last..]);
    let mut required: Vec<String> = LAYOUTS
        .iter()
        .map(|l| format!("layout:{}", l.template_id))
        .collect();
    required.extend(ENUMS.iter().map(|e| format!("enum:{}", e.name)));
    required.extend(examples().iter().map(|(n, _)| format!("example:{n}")));
    required.push("templates".into());
    for r in required {
        if !seen.contains(&r) {
            errors.push(format!("docs/PROTOCOL.md has no block <!-- gen:{r} -->"));
        }
    }
    if bless {
        std::fs::write(DOC, new_doc).unwrap();
        return;
    }
    assert!(
        errors.is_empty(),
        "{}\n(regenerate with TPX_BLESS=1 and review)",
        errors.join("\n")
    );
}

#[test]
fn examples_decode() {
    for (name, bytes) in examples() {
        let ok = tpx_wire::decode_client(&bytes).is_ok()
            || tpx_wire::decode_server(&bytes).is_ok()
            || tpx_wire::Input::decode(&bytes).is_ok()
            || tpx_wire::decode_record(&bytes).is_ok()
            || tpx_wire::decode_packet(&bytes).is_ok()
            || tpx_wire::MdMessage::decode(&bytes).is_ok()
            || tpx_wire::mold::RetransmitRequest::decode(&bytes).is_ok()
            || tpx_wire::mold::decode_retransmit_response(&bytes).is_ok();
        assert!(ok, "example {name} does not decode");
    }
}
