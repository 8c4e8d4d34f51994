//! Query strings as real clients send them: Python booleans, repeated keys, both filter
//! dialects.

use crate::errors::HttpError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use wharf_api::filters::Filters;
use wharf_api::query::parse_bool;

/// All `key=value` pairs of the query, in order, percent- and `+`-decoded.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &str) -> Result<Params, HttpError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(Params)
            .map_err(|e| HttpError::invalid(format!("invalid query string: {e}")))
    }

    /// The first value, like Go's `r.Form.Get`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A value that is present and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Missing means false.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).map(parse_bool).unwrap_or(false)
    }

    /// Missing or empty means `None`.
    pub fn int(&self, key: &str) -> Result<Option<i64>, HttpError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                HttpError::invalid(format!(
                    "invalid value for {key}: strconv.Atoi: parsing {v:?}: invalid syntax"
                ))
            }),
        }
    }

    /// Unix seconds, fractional allowed; missing or empty means 0 (unset).
    pub fn unix_time(&self, key: &str) -> Result<f64, HttpError> {
        match self.non_empty(key) {
            None => Ok(0.0),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .map_err(|_| HttpError::invalid(format!("invalid value for {key}: {v:?}"))),
        }
    }

    pub fn filters(&self) -> Result<Filters, HttpError> {
        Filters::parse(self.get("filters").unwrap_or("")).map_err(HttpError::invalid)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Params::parse(parts.uri.query().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_booleans_and_repeats() {
        let p = Params::parse("force=False&v=True&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1&t=")
            .unwrap();
        assert!(!p.bool("force"));
        assert!(p.bool("v"));
        assert!(!p.bool("missing"));
        assert_eq!(p.all("changes"), ["CMD [\"sh\"]", "ENV A=1"]);
        assert_eq!(p.int("t").unwrap(), None);
        assert!(Params::parse("t=x").unwrap().int("t").is_err());
    }
}
