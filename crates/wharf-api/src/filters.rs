//! The `filters` query parameter in both dialects clients send:
//! the CLI's map of booleans `{"label":{"a=b":true}}` and the list form `{"label":["a=b"]}`.

use serde_json::Value;
use std::collections::BTreeMap;

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
}
