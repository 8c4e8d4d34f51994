//! The words of a Dockerfile line, as BuildKit's parser and shell lexer read them: splitting
//! keeps quotes (`parse_words`), and each word is later expanded against the config's `Env`
//! with its quotes removed (`process_word`). Only what the `--change` dialect needs: no
//! command substitution, no globbing, `\` as the escape character.

/// Splits on whitespace outside quotes; quotes and escapes stay in the words.
pub fn parse_words(rest: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A quoted empty string ("") is a word of its own.
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == '\\' {
                    match chars.next() {
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                        }
                        // An escape at the end of the line is dropped.
                        None => break,
                    }
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == '\\' && q != '\'' {
                    match chars.next() {
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                        }
                        None => break,
                    }
                    continue;
                }
                word.push(c);
            }
        }
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// The value of `name` in a `KEY=value` list; the last entry wins, as in a process's env.
fn lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|e| match e.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if e == name => Some(""),
        _ => None,
    })
}

/// One word with its quotes removed and `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR:+x}`,
/// `${VAR-x}`, `${VAR+x}` expanded from `env`, as BuildKit's `ProcessWord`.
pub fn process_word(word: &str, env: &[String]) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    out.push(chars[i]);
                    i += 1;
                }
                if i == chars.len() {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                i += 1;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(
                            "unexpected end of statement while looking for matching double-quote"
                                .into(),
                        ),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                // Inside double quotes only these lose their backslash.
                                Some(n @ ('"' | '$' | '\\')) => out.push(*n),
                                Some(n) => {
                                    out.push('\\');
                                    out.push(*n);
                                }
                                None => out.push('\\'),
                            }
                            i += 2;
                        }
                        Some('$') => i = expand(&chars, i, env, &mut out)?,
                        Some(c) => {
                            out.push(*c);
                            i += 1;
                        }
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.get(i + 1) {
                    out.push(*n);
                }
                i += 2;
            }
            '$' => i = expand(&chars, i, env, &mut out)?,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands the variable at `chars[at] == '$'`; the index after it.
fn expand(chars: &[char], at: usize, env: &[String], out: &mut String) -> Result<usize, String> {
    let mut i = at + 1;
    match chars.get(i) {
        Some('{') => {
            i += 1;
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if name.is_empty() {
                return Err(format!(
                    "missing ':' in substitution: {}",
                    chars[at..].iter().collect::<String>()
                ));
            }
            let value = lookup(env, &name);
            match chars.get(i) {
                Some('}') => {
                    out.push_str(value.unwrap_or(""));
                    Ok(i + 1)
                }
                Some(&c) => {
                    let colon = c == ':';
                    if colon {
                        i += 1;
                    }
                    let op = chars.get(i).copied().unwrap_or('}');
                    if op != '-' && op != '+' {
                        return Err(format!("unsupported modifier ({op}) in substitution"));
                    }
                    i += 1;
                    let start = i;
                    let mut depth = 0;
                    while i < chars.len() && !(chars[i] == '}' && depth == 0) {
                        match chars[i] {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        i += 1;
                    }
                    if i == chars.len() {
                        return Err("syntax error: missing '}'".into());
                    }
                    let alt: String = chars[start..i].iter().collect();
                    let set = match (colon, value) {
                        (true, Some(v)) => !v.is_empty(),
                        (false, Some(_)) => true,
                        (_, None) => false,
                    };
                    match (op, set) {
                        ('-', true) | ('+', false) => out.push_str(value.unwrap_or("")),
                        _ => out.push_str(&process_word(&alt, env)?),
                    }
                    Ok(i + 1)
                }
                None => Err("syntax error: missing '}'".into()),
            }
        }
        Some(&c) if is_name_char(c) => {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push_str(lookup(env, &name).unwrap_or(""));
            Ok(i)
        }
        // A lone `$` is itself.
        _ => {
            out.push('$');
            Ok(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_quotes() {
        assert_eq!(
            parse_words(r#"A=1 B="two words"  C='x y' D=a\ b"#),
            vec!["A=1", r#"B="two words""#, "C='x y'", r"D=a\ b"]
        );
        assert_eq!(parse_words(r#""" x"#), vec![r#""""#, "x"]);
        assert!(parse_words("   ").is_empty());
    }

    #[test]
    fn words_expand_and_lose_their_quotes() {
        let env = vec!["HOME=/root".to_string(), "E=".to_string()];
        let p = |w: &str| process_word(w, &env).unwrap();
        assert_eq!(p(r#""two words""#), "two words");
        assert_eq!(p("'$HOME'"), "$HOME");
        assert_eq!(p("$HOME/x"), "/root/x");
        assert_eq!(p("${HOME}x"), "/rootx");
        assert_eq!(p(r"\$HOME"), "$HOME");
        assert_eq!(p(r#""a\"b\$c\n""#), r#"a"b$c\n"#);
        assert_eq!(p("${NOPE:-dflt}"), "dflt");
        assert_eq!(p("${E:-dflt}"), "dflt");
        assert_eq!(p("${E-dflt}"), "");
        assert_eq!(p("${HOME:+set}"), "set");
        assert_eq!(p("${NOPE:+set}"), "");
        assert_eq!(p("a$"), "a$");
        assert!(process_word("\"open", &env).is_err());
        assert!(process_word("${HOME", &env).is_err());
    }
}
