//! The `filters` query parameter in both dialects clients send:
//! the CLI's map of booleans `{"label":{"a=b":true}}` and the list form `{"label":["a=b"]}`.

use crate::ApiError;
use serde_json::Value;
use std::collections::BTreeMap;

/// The filter names one list endpoint takes, beside its implementation. `applied` and
/// `not_yet` together are Docker's names for that endpoint (API 1.44).
#[derive(Debug, Clone, Copy)]
pub struct FilterSet {
    /// Applied with Docker's meaning.
    pub applied: &'static [&'static str],
    /// Docker's, not served by Wharf yet: refused with a 400 that names the filter.
    pub not_yet: &'static [&'static str],
}

impl FilterSet {
    /// Every name Docker takes here, sorted.
    pub fn docker_names(&self) -> Vec<&'static str> {
        let mut all: Vec<_> = self.applied.iter().chain(self.not_yet).copied().collect();
        all.sort_unstable();
        all
    }
}

/// Filter name → accepted values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the URL-decoded JSON. An empty string means no filters.
    pub fn parse(raw: &str) -> Result<Filters, String> {
        let mut out = BTreeMap::new();
        if raw.trim().is_empty() {
            return Ok(Filters(out));
        }
        let v: Value =
            serde_json::from_str(raw).map_err(|e| format!("invalid filter '{raw}': {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| format!("invalid filter '{raw}': not a JSON object"))?;
        for (k, vals) in obj {
            let mut list = Vec::new();
            match vals {
                Value::Array(a) => {
                    for x in a {
                        list.push(value_to_string(x));
                    }
                }
                Value::Object(m) => {
                    for (val, on) in m {
                        if on.as_bool().unwrap_or(true) {
                            list.push(val.clone());
                        }
                    }
                }
                Value::String(s) => list.push(s.clone()),
                other => return Err(format!("invalid filter '{k}': {other}")),
            }
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Rejects filter names outside `allowed`, in dockerd's words.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), String> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(format!("invalid filter '{k}'"));
            }
        }
        Ok(())
    }

    /// Checks the names against an endpoint's [`FilterSet`]: a name Docker does not know is
    /// `invalid filter 'x'` (moby's `filters.Args.Validate`); a name Docker knows but Wharf does
    /// not apply yet is refused by name, never ignored.
    pub fn check(&self, set: &FilterSet) -> Result<(), ApiError> {
        for k in self.0.keys() {
            if set.not_yet.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Wharf does not support filter '{k}' yet"
                )));
            }
            if !set.applied.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// moby's `GetBoolOrDefault`: absent → `default`; `1`/`true` or `0`/`false`, and nothing
    /// else, nor both at once.
    pub fn bool_or_default(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        let Some(vals) = self.0.get(key) else {
            return Ok(default);
        };
        let is_true = vals.iter().any(|v| v == "1" || v == "true");
        let is_false = vals.iter().any(|v| v == "0" || v == "false");
        if is_true == is_false {
            return Err(ApiError::invalid(format!(
                "invalid filter '{key}=[{}]'",
                vals.join(" ")
            )));
        }
        Ok(is_true)
    }

    /// `label` filters: every `key` or `key=value` must match the given labels.
    pub fn match_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.get("label").iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).map(|x| x == v).unwrap_or(false),
            None => labels.contains_key(f.as_str()),
        })
    }
}

fn value_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects() {
        let a = Filters::parse(r#"{"label":{"a=b":true},"status":{"exited":true}}"#).unwrap();
        assert_eq!(a.get("label"), ["a=b"]);
        assert_eq!(a.get("status"), ["exited"]);
        let b = Filters::parse(r#"{"label":["com.x=1","com.y=False"]}"#).unwrap();
        assert_eq!(b.get("label").len(), 2);
        assert!(Filters::parse("").unwrap().0.is_empty());
        assert!(Filters::parse("nope").is_err());
    }

    #[test]
    fn labels() {
        let f = Filters::parse(r#"{"label":["a=1","b"]}"#).unwrap();
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(!f.match_labels(&l));
        l.insert("b".to_string(), "".to_string());
        assert!(f.match_labels(&l));
        assert!(f.validate(&["label"]).is_ok());
        assert!(f.validate(&["status"]).is_err());
    }

    #[test]
    fn check_refuses_unknown_and_unserved_names() {
        let set = FilterSet {
            applied: &["label"],
            not_yet: &["network"],
        };
        let f = |j: &str| Filters::parse(j).unwrap();
        assert!(f(r#"{"label":["a"]}"#).check(&set).is_ok());
        assert_eq!(
            f(r#"{"nope":["a"]}"#).check(&set).unwrap_err().message,
            "invalid filter 'nope'"
        );
        assert_eq!(
            f(r#"{"network":["a"]}"#).check(&set).unwrap_err().message,
            "Wharf does not support filter 'network' yet"
        );
        assert_eq!(set.docker_names(), ["label", "network"]);
    }

    #[test]
    fn bools_as_moby_reads_them() {
        let f = |j: &str| Filters::parse(j).unwrap();
        assert!(!f("{}").bool_or_default("dangling", false).unwrap());
        assert!(f(r#"{"dangling":["true"]}"#)
            .bool_or_default("dangling", false)
            .unwrap());
        assert!(!f(r#"{"dangling":{"0":true}}"#)
            .bool_or_default("dangling", true)
            .unwrap());
        assert_eq!(
            f(r#"{"dangling":["yes"]}"#)
                .bool_or_default("dangling", false)
                .unwrap_err()
                .message,
            "invalid filter 'dangling=[yes]'"
        );
        assert!(f(r#"{"dangling":["1","false"]}"#)
            .bool_or_default("dangling", false)
            .is_err());
    }
}
