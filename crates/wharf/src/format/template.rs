//! The subset of Go's `text/template` that docker `--format` strings use: field chains
//! (`{{.State.Running}}`), `{{.}}`, string and number literals, pipelines (`{{.Names | upper}}`),
//! trim markers (`{{- ... -}}`) and docker's functions (`json`, `upper`, `lower`, `title`,
//! `join`, `split`, `index`, `len`, `truncate`, `pad`, `println`). No `if`/`range`.
//!
//! Data is JSON: docker runs templates on Go structs and falls back to the raw JSON map, so a
//! field is looked up by its exact name first and then case-insensitively (`.ID` finds `Id`,
//! `.APIVersion` finds `ApiVersion`). Values print as Go's `fmt` prints them.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Command>),
}

/// One command of a pipeline: a function call or a single operand.
#[derive(Debug, Clone, PartialEq)]
struct Command {
    words: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Field(Vec<String>),
    Str(String),
    Num(f64),
    Ident(String),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

const FUNCS: &[&str] = &[
    "json", "upper", "lower", "title", "join", "split", "index", "len", "truncate", "pad",
    "println", "print",
];

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let mut nodes = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            let mut text = &rest[..start];
            let mut inner = &rest[start + 2..];
            if let Some(stripped) = inner.strip_prefix("- ") {
                text = text.trim_end();
                inner = stripped;
            }
            let end = inner
                .find("}}")
                .ok_or_else(|| anyhow!("template: unclosed action"))?;
            let mut action = &inner[..end];
            rest = &inner[end + 2..];
            if let Some(stripped) = action.strip_suffix(" -") {
                action = stripped;
                rest = rest.trim_start();
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            nodes.push(Node::Action(parse_pipeline(action.trim())?));
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_string()));
        }
        Ok(Template { nodes })
    }

    pub fn render(&self, data: &Value) -> Result<String> {
        self.exec(data, false)
    }

    /// Docker's table header pass: the data maps field names to column titles and every
    /// function returns its argument unchanged, so `{{json .Names}}` titles as `NAMES`.
    pub fn render_header(&self, headers: &Value) -> Result<String> {
        self.exec(headers, true)
    }

    /// True when some action reads `.name` (docker asks for sizes when a format uses `.Size`).
    pub fn uses_field(&self, name: &str) -> bool {
        self.nodes.iter().any(|n| match n {
            Node::Action(cmds) => cmds.iter().any(|c| {
                c.words
                    .iter()
                    .any(|w| matches!(w, Operand::Field(p) if p.first().is_some_and(|f| f == name)))
            }),
            Node::Text(_) => false,
        })
    }

    /// Every field chain the template reads (`.Actor.ID` → `["Actor", "ID"]`), in order.
    pub fn fields(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for n in &self.nodes {
            if let Node::Action(cmds) = n {
                for c in cmds {
                    for w in &c.words {
                        if let Operand::Field(p) = w {
                            out.push(p.clone());
                        }
                    }
                }
            }
        }
        out
    }

    fn exec(&self, data: &Value, header: bool) -> Result<String> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(cmds) => {
                    let mut piped: Option<Value> = None;
                    for cmd in cmds {
                        piped = Some(eval_command(cmd, data, piped, header)?);
                    }
                    if let Some(v) = piped {
                        out.push_str(&go_print(&v));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn parse_pipeline(src: &str) -> Result<Vec<Command>> {
    if src.is_empty() {
        bail!("template: missing value for command");
    }
    let words = tokenize(src)?;
    let mut cmds = Vec::new();
    for group in words.split(|w| w == "|") {
        if group.is_empty() {
            bail!("template: missing command in pipeline {src:?}");
        }
        let words = group
            .iter()
            .map(|w| parse_operand(w))
            .collect::<Result<Vec<_>>>()?;
        if let Operand::Ident(name) = &words[0] {
            if matches!(
                name.as_str(),
                "if" | "range" | "with" | "end" | "else" | "define"
            ) {
                bail!("template: {name:?} is not supported by wharf's --format");
            }
            if !FUNCS.contains(&name.as_str()) {
                bail!("template: function {name:?} not defined");
            }
        } else if words.len() > 1 && !is_label_call(&words) {
            bail!(
                "template: can't give argument to non-function {:?}",
                group[0]
            );
        }
        cmds.push(Command { words });
    }
    Ok(cmds)
}

fn tokenize(src: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = src.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '|' {
            chars.next();
            words.push("|".to_string());
        } else if c == '"' || c == '`' {
            let quote = c;
            let mut w = String::from(c);
            chars.next();
            let mut closed = false;
            while let Some(ch) = chars.next() {
                w.push(ch);
                if ch == '\\' && quote == '"' {
                    if let Some(esc) = chars.next() {
                        w.push(esc);
                    }
                } else if ch == quote {
                    closed = true;
                    break;
                }
            }
            if !closed {
                bail!("template: unterminated quoted string");
            }
            words.push(w);
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '|' {
                    break;
                }
                w.push(ch);
                chars.next();
            }
            words.push(w);
        }
    }
    Ok(words)
}

fn parse_operand(w: &str) -> Result<Operand> {
    if w == "." {
        return Ok(Operand::Field(Vec::new()));
    }
    if let Some(path) = w.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts.iter().any(String::is_empty) {
            bail!("template: bad field {w:?}");
        }
        return Ok(Operand::Field(parts));
    }
    if let Some(s) = w.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        return Ok(Operand::Str(s.to_string()));
    }
    if w.starts_with('"') {
        let s: String = serde_json::from_str(w).map_err(|_| anyhow!("template: bad string {w}"))?;
        return Ok(Operand::Str(s));
    }
    if let Ok(n) = w.parse::<f64>() {
        return Ok(Operand::Num(n));
    }
    if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(Operand::Ident(w.to_string()));
    }
    bail!("template: unexpected {w:?} in command")
}

/// Where a row keeps its labels for `.Label "key"`: a key no Go field can have, which
/// `json` leaves out as Go leaves out methods with arguments.
pub const LABEL_MAP: &str = "\u{1}Label";

/// `.Label "key"`: the one method with an argument docker's list formatters offer (volumes,
/// containers, images); rows carry their labels under `LABEL_MAP` for it.
fn is_label_call(words: &[Operand]) -> bool {
    matches!(words, [Operand::Field(p), Operand::Str(_)] if p.last().is_some_and(|l| l == "Label"))
}

fn eval_command(cmd: &Command, data: &Value, piped: Option<Value>, header: bool) -> Result<Value> {
    if is_label_call(&cmd.words) && piped.is_none() {
        if let [Operand::Field(path), Operand::Str(key)] = cmd.words.as_slice() {
            let mut path = path.clone();
            if let Some(last) = path.last_mut() {
                *last = LABEL_MAP.to_string();
            }
            if header {
                // docker's header for a label column: the key's last dotted part, `-` and `_`
                // as spaces.
                let last = key.rsplit('.').next().unwrap_or(key);
                return Ok(Value::String(last.replace(['-', '_'], " ")));
            }
            // A label that is not there is empty, as the Go method answers.
            return Ok(lookup(data, &path)
                .get(key)
                .cloned()
                .unwrap_or_else(|| Value::String(String::new())));
        }
    }
    let mut args = Vec::new();
    let (func, operands) = match &cmd.words[0] {
        Operand::Ident(name) => (Some(name.as_str()), &cmd.words[1..]),
        _ => (None, &cmd.words[..]),
    };
    // Go prints a missing map key as `<no value>` but hands a function its zero value (nil):
    // `{{json .State.Health}}` is `null` for a container without a healthcheck.
    let as_arg = |v: Value| match v {
        Value::String(s) if func.is_some() && s == NO_VALUE => Value::Null,
        other => other,
    };
    for op in operands {
        args.push(match op {
            Operand::Field(path) => as_arg(lookup(data, path)),
            Operand::Str(s) => Value::String(s.clone()),
            Operand::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Operand::Ident(i) => bail!("template: function {i:?} used as an argument"),
        });
    }
    if let Some(p) = piped {
        args.push(as_arg(p));
    }
    let Some(func) = func else {
        return args.pop().ok_or_else(|| anyhow!("template: empty command"));
    };
    if header {
        return Ok(args.into_iter().next().unwrap_or(Value::Null));
    }
    call(func, args)
}

fn call(func: &str, args: Vec<Value>) -> Result<Value> {
    let want = |n: usize| -> Result<()> {
        if args.len() != n {
            bail!(
                "template: wrong number of args for {func}: want {n} got {}",
                args.len()
            );
        }
        Ok(())
    };
    let s = |v: &Value| go_print(v);
    Ok(match func {
        "json" => {
            want(1)?;
            // Go's `json.Marshal`, HTML characters escaped, wharf's own keys left out.
            let mut v = args[0].clone();
            if let Value::Object(m) = &mut v {
                m.remove(LABEL_MAP);
            }
            Value::String(super::go_json(&v))
        }
        "upper" => {
            want(1)?;
            Value::String(s(&args[0]).to_uppercase())
        }
        "lower" => {
            want(1)?;
            Value::String(s(&args[0]).to_lowercase())
        }
        "title" => {
            want(1)?;
            Value::String(title(&s(&args[0])))
        }
        "join" => {
            want(2)?;
            let items: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(go_print).collect(),
                other => vec![go_print(other)],
            };
            Value::String(items.join(&s(&args[1])))
        }
        "split" => {
            want(2)?;
            let text = s(&args[0]);
            let sep = s(&args[1]);
            Value::Array(
                text.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            )
        }
        "index" => {
            if args.len() < 2 {
                bail!("template: index needs at least 2 args");
            }
            let mut v = args[0].clone();
            for key in &args[1..] {
                v = match (&v, key) {
                    (Value::Object(m), k) => m.get(&s(k)).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(i as usize).cloned())
                        .ok_or_else(|| anyhow!("template: index out of range"))?,
                    _ => bail!("template: can't index {}", go_print(&v)),
                };
            }
            v
        }
        "len" => {
            want(1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(t) => t.len(),
                other => bail!("template: len of {}", go_print(other)),
            };
            Value::from(n)
        }
        "truncate" => {
            want(2)?;
            let n = args[1].as_f64().unwrap_or(0.0).max(0.0) as usize;
            Value::String(s(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            want(3)?;
            let l = args[1].as_f64().unwrap_or(0.0).max(0.0) as usize;
            let r = args[2].as_f64().unwrap_or(0.0).max(0.0) as usize;
            Value::String(format!("{}{}{}", " ".repeat(l), s(&args[0]), " ".repeat(r)))
        }
        "print" | "println" => {
            let mut text = args.iter().map(go_print).collect::<Vec<_>>().join(" ");
            if func == "println" {
                text.push('\n');
            }
            Value::String(text)
        }
        other => bail!("template: function {other:?} not defined"),
    })
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

const NO_VALUE: &str = "<no value>";

fn lookup(data: &Value, path: &[String]) -> Value {
    let mut v = data;
    for key in path {
        let Value::Object(map) = v else {
            return Value::Null;
        };
        let found = map.get(key).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        });
        match found {
            Some(next) => v = next,
            None => return Value::String(NO_VALUE.into()),
        }
    }
    v.clone()
}

/// Go's `fmt.Print` of a decoded JSON value: `[a b]` for slices, `map[k:v]` for maps, `<nil>`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_nested_and_case_insensitive() {
        let v = json!({"Id": "abc", "State": {"Running": true, "Pid": 42},
                       "Config": {"Cmd": ["echo", "hi"], "Labels": {"b": "2", "a": "1"}}});
        assert_eq!(render("{{.Id}}", &v), "abc");
        assert_eq!(render("{{.ID}}", &v), "abc");
        assert_eq!(render("{{.State.Running}} {{.State.Pid}}", &v), "true 42");
        assert_eq!(render("{{.Config.Cmd}}", &v), "[echo hi]");
        assert_eq!(render("{{.Config.Labels}}", &v), "map[a:1 b:2]");
        assert_eq!(render("{{.Nope}}", &v), "<no value>");
        assert_eq!(render("x{{.State.Nope.Deeper}}y", &v), "x<no value>y");
        assert_eq!(render("{{json .Nope}} {{.Nope | json}}", &v), "null null");
    }

    #[test]
    fn json_and_functions() {
        let v = json!({"Config": {"Cmd": ["echo", "hi"]}, "Names": "web", "Env": ["A=1", "B=2"]});
        assert_eq!(render("{{json .Config}}", &v), r#"{"Cmd":["echo","hi"]}"#);
        assert_eq!(render("{{json .Names}}", &v), r#""web""#);
        assert_eq!(render("{{.Names | upper}}", &v), "WEB");
        assert_eq!(render("{{upper .Names}}", &v), "WEB");
        assert_eq!(render(r#"{{join .Env ","}}"#, &v), "A=1,B=2");
        assert_eq!(render(r#"{{index .Config "Cmd"}}"#, &v), "[echo hi]");
        assert_eq!(render("{{len .Env}}", &v), "2");
        assert_eq!(render("{{truncate .Names 2}}", &v), "we");
        assert_eq!(render("{{title \"hello world\"}}", &v), "Hello World");
        assert_eq!(render("a {{- .Names -}} b", &v), "awebb");
    }

    #[test]
    fn header_pass_keeps_argument() {
        let t = Template::parse("{{.ID}}\t{{json .Names}}").unwrap();
        let h = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        assert_eq!(t.render_header(&h).unwrap(), "CONTAINER ID\tNAMES");
        assert!(t.uses_field("Names"));
        assert!(!t.uses_field("Size"));
    }

    #[test]
    fn errors_are_reported() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{range .A}}{{end}}").is_err());
        assert!(Template::parse("{{nosuchfunc .A}}").is_err());
        assert!(Template::parse("{{.A .B}}").is_err());
    }

    #[test]
    fn label_method_reads_the_row_label_map() {
        let mut row = json!({"Name": "v"});
        row[LABEL_MAP] = json!({"a.b": "1"});
        assert_eq!(render("{{.Label \"a.b\"}}|{{.Label \"x\"}}", &row), "1|");
        assert_eq!(render("{{json .}}", &row), "{\"Name\":\"v\"}");
        let t = Template::parse("{{.Label \"com.my_key-x\"}}").unwrap();
        assert_eq!(t.render_header(&json!({})).unwrap(), "my key x");
    }
}
