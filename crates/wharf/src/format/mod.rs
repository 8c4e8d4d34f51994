//! Docker's `--format` machinery: `table` / `json` / custom templates over JSON rows, and the
//! indented JSON of `inspect`.

pub mod table;
pub mod template;
pub mod units;

use anyhow::{Context, Result};
use serde_json::Value;
use template::Template;

/// A parsed `--format` value, after docker's pre-processing.
pub struct Format {
    table: bool,
    template: Template,
}

impl Format {
    /// `default_table` is the command's `table ...` format, used for an empty format or the
    /// bare word `table`; `json` means `{{json .}}`. Like docker, a literal `\t` or `\n` in the
    /// format becomes a tab or newline and surrounding spaces are trimmed.
    pub fn new(format: &str, default_table: &str) -> Result<Format> {
        let format = match format.trim() {
            "" | "table" => default_table,
            "json" => "{{json .}}",
            other => other,
        };
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, format),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let template = Template::parse(&body).context("template parsing error")?;
        Ok(Format { table, template })
    }

    pub fn uses_field(&self, name: &str) -> bool {
        self.template.uses_field(name)
    }

    /// Renders every row (each followed by a newline); tables get docker's header row and
    /// column alignment.
    pub fn render(&self, rows: &[Value], headers: &Value) -> Result<String> {
        let mut text = String::new();
        if self.table {
            text.push_str(&self.template.render_header(headers)?);
            text.push('\n');
        }
        for row in rows {
            text.push_str(
                &self
                    .template
                    .render(row)
                    .context("template parsing error")?,
            );
            text.push('\n');
        }
        if self.table {
            Ok(table::TabWriter::default().format(&text))
        } else {
            Ok(text)
        }
    }
}

/// Go's `json.Indent(raw, "", "    ")`: docker prints inspect output this way.
pub fn indent_json(v: &Value) -> String {
    indent_compact(&v.to_string())
}

/// Go's `json.Marshal` of a value: serde's compact text with `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as Go escapes them (they can only occur inside strings).
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `indent_json` of text that is already compact JSON (fields in an order of its own).
pub fn indent_compact(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Empty containers stay `{}` / `[]`, as Go prints them.
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out
}

/// Go's `strconv.Quote` for the printable text docker quotes (the COMMAND column).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// `stringid.TruncateID`: drops an algorithm prefix and keeps 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_format_aligns_with_header() {
        let f = Format::new("table {{.ID}}\\t{{.Name}}", "").unwrap();
        let rows = vec![json!({"ID": "abc", "Name": "x"})];
        let out = f
            .render(&rows, &json!({"ID": "ID", "Name": "NAME"}))
            .unwrap();
        assert_eq!(out, "ID        NAME\nabc       x\n");
    }

    #[test]
    fn raw_format_has_no_header() {
        let f = Format::new("{{.ID}}: {{.Name}}", "").unwrap();
        let out = f
            .render(&[json!({"ID": "a", "Name": "b"})], &json!({}))
            .unwrap();
        assert_eq!(out, "a: b\n");
        let f = Format::new("json", "").unwrap();
        assert_eq!(
            f.render(&[json!({"ID": "a"})], &json!({})).unwrap(),
            "{\"ID\":\"a\"}\n"
        );
    }

    #[test]
    fn indent_matches_go() {
        let v = json!([{"A": [], "B": {"C": "x,y:{"}, "D": [1, 2]}]);
        assert_eq!(
            indent_json(&v),
            "[\n    {\n        \"A\": [],\n        \"B\": {\n            \"C\": \"x,y:{\"\n        },\n        \"D\": [\n            1,\n            2\n        ]\n    }\n]"
        );
    }

    #[test]
    fn quote_ellipsis_truncate() {
        assert_eq!(go_quote("sh -c \"x\""), "\"sh -c \\\"x\\\"\"");
        assert_eq!(ellipsis("sleep 1000", 20), "sleep 1000");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(truncate_id("0123456789abcdef"), "0123456789ab");
    }
}
