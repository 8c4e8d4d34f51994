//! JSON written the way Go's `encoding/json` writes it, where the bytes matter: the
//! `X-Registry-Auth` header is base64 of such JSON, and config.json is rewritten with
//! `MarshalIndent(.., "", "\t")`. Go escapes `<`, `>`, `&`, U+2028 and U+2029, and keeps the
//! field order of its struct (maps sorted by key).

use serde_json::Value;

/// A JSON string literal with Go's escaping.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An ordered object under construction: `(key, already-encoded value)` pairs.
#[derive(Default)]
pub struct Object {
    fields: Vec<(String, Node)>,
}

/// An encoded value, kept as a tree so that it can be printed compact or indented.
pub enum Node {
    Raw(String),
    Object(Object),
    Array(Vec<Node>),
}

impl Object {
    /// A string field left out when empty (Go's `omitempty`).
    pub fn str_omitempty(&mut self, key: &str, v: &str) -> &mut Self {
        if !v.is_empty() {
            self.fields.push((key.to_string(), Node::Raw(string(v))));
        }
        self
    }

    pub fn node(&mut self, key: &str, v: Node) -> &mut Self {
        self.fields.push((key.to_string(), v));
        self
    }

    pub fn compact(&self) -> String {
        let mut out = String::new();
        write_object(self, None, 0, &mut out);
        out
    }

    /// `MarshalIndent(v, "", "\t")`.
    pub fn indented(&self) -> String {
        let mut out = String::new();
        write_object(self, Some("\t"), 0, &mut out);
        out
    }
}

/// Any JSON value as Go would write a `map[string]any` of it: keys sorted.
pub fn node_of(v: &Value) -> Node {
    match v {
        Value::String(s) => Node::Raw(string(s)),
        Value::Array(a) => Node::Array(a.iter().map(node_of).collect()),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut o = Object::default();
            for k in keys {
                o.node(k, node_of(&m[k]));
            }
            Node::Object(o)
        }
        other => Node::Raw(other.to_string()),
    }
}

fn newline(indent: Option<&str>, depth: usize, out: &mut String) {
    if let Some(unit) = indent {
        out.push('\n');
        out.push_str(&unit.repeat(depth));
    }
}

fn write_node(n: &Node, indent: Option<&str>, depth: usize, out: &mut String) {
    match n {
        Node::Raw(s) => out.push_str(s),
        Node::Object(o) => write_object(o, indent, depth, out),
        Node::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(indent, depth + 1, out);
                write_node(item, indent, depth + 1, out);
            }
            newline(indent, depth, out);
            out.push(']');
        }
    }
}

fn write_object(o: &Object, indent: Option<&str>, depth: usize, out: &mut String) {
    if o.fields.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (k, v)) in o.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(indent, depth + 1, out);
        out.push_str(&string(k));
        out.push(':');
        if indent.is_some() {
            out.push(' ');
        }
        write_node(v, indent, depth + 1, out);
    }
    newline(indent, depth, out);
    out.push('}');
}

/// RFC 4648 base64, padded; `url` picks the URL-safe alphabet (Go's `URLEncoding`).
pub fn base64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard (padded) base64, as Go's `StdEncoding.Decode`: `None` on anything malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let produced = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&produced[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(
            string("a<b>&\"\\\n\u{1}\u{2028}é"),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#
        );
    }

    #[test]
    fn objects_keep_their_order_and_indent_with_tabs() {
        let mut inner = Object::default();
        inner
            .str_omitempty("auth", "dTpw")
            .str_omitempty("email", "");
        let mut auths = Object::default();
        auths.node("localhost:5000", Node::Object(inner));
        let mut top = Object::default();
        top.node("auths", Node::Object(auths))
            .node("empty", Node::Object(Object::default()))
            .node("list", Node::Array(vec![Node::Raw("1".into())]));
        assert_eq!(
            top.indented(),
            "{\n\t\"auths\": {\n\t\t\"localhost:5000\": {\n\t\t\t\"auth\": \"dTpw\"\n\t\t}\n\t},\n\t\"empty\": {},\n\t\"list\": [\n\t\t1\n\t]\n}"
        );
        assert_eq!(
            top.compact(),
            r#"{"auths":{"localhost:5000":{"auth":"dTpw"}},"empty":{},"list":[1]}"#
        );
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64(b"{}", true), "e30=");
        assert_eq!(
            base64(b"capuser:secretpw", false),
            "Y2FwdXNlcjpzZWNyZXRwdw=="
        );
        assert_eq!(base64(&[0xfb, 0xff], true), "-_8=");
        assert_eq!(base64(&[0xfb, 0xff], false), "+/8=");
        for s in ["", "a", "ab", "abc", "abcd"] {
            assert_eq!(
                base64_decode(&base64(s.as_bytes(), false)).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(
            base64_decode("Y2FwdXNlcjpzZWNyZXRwdw=="),
            Some(b"capuser:secretpw".to_vec())
        );
        assert_eq!(base64_decode("abc"), None);
        assert_eq!(base64_decode("a=bc"), None);
        assert_eq!(base64_decode("ab!c"), None);
    }
}
