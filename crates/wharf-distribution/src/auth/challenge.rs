//! `WWW-Authenticate` challenges (RFC 7235): `Basic realm="x"`, `Bearer realm="…",service="…"`.

use http::HeaderMap;

/// One challenge: its scheme in lower case and its parameters (names in lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every challenge of every `WWW-Authenticate` header, in order.
pub(crate) fn parse_headers(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse)
        .collect()
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses one header value; a value may hold several challenges (`Basic realm="a", Bearer
/// realm="b"`): a token not followed by `=` starts the next one.
pub(crate) fn parse(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let end = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
        if end == 0 {
            // Not a token: nothing sensible follows.
            break;
        }
        let token = &rest[..end];
        let after = rest[end..].trim_start_matches([' ', '\t']);
        match (after.strip_prefix('='), out.last_mut()) {
            (Some(v), Some(current)) => {
                let v = v.trim_start_matches([' ', '\t']);
                let (value, remaining) = parse_value(v);
                current.params.push((token.to_ascii_lowercase(), value));
                rest = remaining;
            }
            // `key=value` before any scheme, or a token68 (`Bearer abc==`): skipped.
            (Some(v), None) => rest = parse_value(v).1,
            (None, _) => {
                out.push(Challenge {
                    scheme: token.to_ascii_lowercase(),
                    params: Vec::new(),
                });
                rest = after;
            }
        }
    }
    out
}

/// A quoted string (with `\` escapes) or a token; returns it and what follows.
fn parse_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (value, &quoted[i + 1..]),
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                _ => value.push(c),
            }
        }
        // An unterminated quote: take what there is.
        (value, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_owned(), &s[end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn challenges_parse_like_distributions_parser() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                vec![c(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/busybox:pull"),
                    ],
                )],
            ),
            (
                r#"Basic realm="basic-realm""#,
                vec![c("basic", &[("realm", "basic-realm")])],
            ),
            (
                r#"BASIC Realm = "a \"b\"" , charset=UTF-8"#,
                vec![c("basic", &[("realm", "a \"b\""), ("charset", "UTF-8")])],
            ),
            (
                r#"Basic realm="a", Bearer realm="b",error="invalid_token""#,
                vec![
                    c("basic", &[("realm", "a")]),
                    c("bearer", &[("realm", "b"), ("error", "invalid_token")]),
                ],
            ),
            ("Bearer", vec![c("bearer", &[])]),
            ("", vec![]),
            (r#"realm="x""#, vec![]),
            (
                r#"Bearer realm="unterminated"#,
                vec![c("bearer", &[("realm", "unterminated")])],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), want, "{input:?}");
        }
    }

    #[test]
    fn every_header_counts() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::WWW_AUTHENTICATE,
            "Basic realm=\"r\"".parse().unwrap(),
        );
        h.append(
            http::header::WWW_AUTHENTICATE,
            "Bearer realm=\"t\"".parse().unwrap(),
        );
        let got = parse_headers(&h);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].param("realm"), Some("t"));
    }
}
