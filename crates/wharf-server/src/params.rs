//! Every query parameter of every served endpoint, honoured or refused (DESIGN.md "Honour or
//! refuse"). One row per endpoint of Docker's API 1.44 (swagger, moby v25), listing all of
//! Docker's query parameters for it; a unit test checks the rows against the swagger.
//!
//! The [`refuse_unserved`] layer runs after routing: a parameter marked [`Param::NotYet`] with
//! a value that asks for something (anything but empty, `0`, `false`, Python's `False`...) is
//! refused with a 400 naming it, before the handler runs. Parameters that are not in Docker's
//! API are ignored, as Go's `r.Form` ignores them. A capability that lands flips its row from
//! `NotYet` to `Applied`, in this one place.

use crate::errors::json_error;
use crate::query::Params;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use wharf_api::query::parse_bool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Read by the handler and applied (or refused there with a more specific answer).
    Applied,
    /// In Docker's API but ignored by dockerd itself; ignoring it is Docker's behaviour.
    IgnoredByDocker,
    /// Not served by Wharf yet: any value that asks for something is refused with a 400.
    NotYet,
}

use Param::{Applied, IgnoredByDocker, NotYet};

pub struct Endpoint {
    pub method: &'static str,
    /// The swagger's path, `{id}`/`{name}` as there.
    pub path: &'static str,
    pub params: &'static [(&'static str, Param)],
}

const fn ep(
    method: &'static str,
    path: &'static str,
    params: &'static [(&'static str, Param)],
) -> Endpoint {
    Endpoint {
        method,
        path,
        params,
    }
}

/// The served endpoints. Routes answered by fixed refusals (the 501 fallback, swarm's 503,
/// the inspect probes) take no parameters worth a row.
pub const ENDPOINTS: &[Endpoint] = &[
    ep("GET", "/_ping", &[]),
    ep("HEAD", "/_ping", &[]),
    ep("GET", "/version", &[]),
    ep("GET", "/info", &[]),
    ep(
        "GET",
        "/events",
        &[("since", Applied), ("until", Applied), ("filters", Applied)],
    ),
    // `platform`: the image must be for it (404 in dockerd's words otherwise).
    ep(
        "POST",
        "/containers/create",
        &[("name", Applied), ("platform", Applied)],
    ),
    ep(
        "GET",
        "/containers/json",
        &[
            ("all", Applied),
            ("limit", Applied),
            ("size", Applied),
            ("filters", Applied),
        ],
    ),
    ep(
        "DELETE",
        "/containers/{id}",
        &[("v", Applied), ("force", Applied), ("link", NotYet)],
    ),
    ep("GET", "/containers/{id}/json", &[("size", Applied)]),
    // dockerd v25's start handler never reads `detachKeys`.
    ep(
        "POST",
        "/containers/{id}/start",
        &[("detachKeys", IgnoredByDocker)],
    ),
    ep(
        "POST",
        "/containers/{id}/stop",
        &[("signal", Applied), ("t", Applied)],
    ),
    ep(
        "POST",
        "/containers/{id}/restart",
        &[("signal", Applied), ("t", Applied)],
    ),
    ep("POST", "/containers/{id}/kill", &[("signal", Applied)]),
    ep("POST", "/containers/{id}/rename", &[("name", Applied)]),
    ep("POST", "/containers/{id}/wait", &[("condition", Applied)]),
    // `details` is not in the 1.44 swagger; the logs handler owns it.
    ep(
        "GET",
        "/containers/{id}/logs",
        &[
            ("follow", Applied),
            ("stdout", Applied),
            ("stderr", Applied),
            ("since", Applied),
            ("until", Applied),
            ("timestamps", Applied),
            ("tail", Applied),
        ],
    ),
    ep(
        "POST",
        "/containers/{id}/attach",
        &[
            ("detachKeys", Applied),
            ("logs", Applied),
            ("stream", Applied),
            ("stdin", Applied),
            ("stdout", Applied),
            ("stderr", Applied),
        ],
    ),
    ep(
        "POST",
        "/containers/{id}/resize",
        &[("h", Applied), ("w", Applied)],
    ),
    ep("POST", "/containers/{id}/exec", &[]),
    ep("POST", "/exec/{id}/start", &[]),
    ep(
        "POST",
        "/exec/{id}/resize",
        &[("h", Applied), ("w", Applied)],
    ),
    ep("GET", "/exec/{id}/json", &[]),
    ep("GET", "/containers/{id}/top", &[("ps_args", Applied)]),
    ep("POST", "/containers/{id}/update", &[]),
    ep("POST", "/containers/{id}/pause", &[]),
    ep("POST", "/containers/{id}/unpause", &[]),
    // `digests` only adds RepoDigests, which Wharf's images (imported) never have.
    ep(
        "GET",
        "/images/json",
        &[
            ("all", Applied),
            ("filters", Applied),
            ("shared-size", NotYet),
            ("digests", Applied),
        ],
    ),
    // `fromImage` (pull) and `fromSrc=<url>` are refused by the handler with a 501.
    ep(
        "POST",
        "/images/create",
        &[
            ("fromImage", Applied),
            ("fromSrc", Applied),
            ("repo", Applied),
            ("tag", Applied),
            ("message", Applied),
            ("changes", Applied),
            ("platform", Applied),
        ],
    ),
    ep("GET", "/images/{name}/json", &[]),
    ep("GET", "/images/{name}/history", &[]),
    ep(
        "POST",
        "/images/{name}/tag",
        &[("repo", Applied), ("tag", Applied)],
    ),
    ep(
        "DELETE",
        "/images/{name}",
        &[("force", Applied), ("noprune", Applied)],
    ),
];

/// The swagger path of a request, from axum's matched route; image routes are matched by
/// hand (names contain `/`), so their operation is read from the path's end.
fn swagger_path<'a>(method: &Method, matched: &'a str, path: &str) -> Option<&'a str> {
    if matched != "/images/{*rest}" {
        return Some(matched);
    }
    let rest = path.strip_prefix("/images/")?;
    Some(match (method.as_str(), rest) {
        ("GET", "json") => "/images/json",
        ("POST", "create") => "/images/create",
        ("GET", r) if r.ends_with("/json") => "/images/{name}/json",
        ("GET", r) if r.ends_with("/history") => "/images/{name}/history",
        ("POST", r) if r.ends_with("/tag") => "/images/{name}/tag",
        ("DELETE", _) => "/images/{name}",
        _ => return None,
    })
}

pub fn endpoint(method: &Method, path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS
        .iter()
        .find(|e| e.method == method.as_str() && e.path == path)
}

/// The route layer: refuses a `NotYet` parameter that asks for something.
pub async fn refuse_unserved(req: Request, next: Next) -> Response {
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let (Some(matched), Some(query)) = (matched, req.uri().query()) else {
        return next.run(req).await;
    };
    let Some(ep) = swagger_path(req.method(), &matched, req.uri().path())
        .and_then(|p| endpoint(req.method(), p))
    else {
        return next.run(req).await;
    };
    // A malformed query is the handler's to refuse, with its own words.
    if let Ok(q) = Params::parse(query) {
        for (name, _) in ep.params.iter().filter(|(_, p)| *p == NotYet) {
            if q.all(name).iter().any(|v| parse_bool(v)) {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "Wharf does not support the '{name}' parameter of {} {} yet",
                        ep.method, ep.path
                    ),
                );
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// `(METHOD, path) → query parameter names` of the swagger's `paths`, read line by line
    /// (the layout of moby's hand-written YAML: 2-space path keys, 4-space methods, list items
    /// under `parameters:` with `name:` and `in:`).
    fn swagger_query_params(yaml: &str) -> BTreeMap<(String, String), BTreeSet<String>> {
        type Item = Option<(Option<String>, Option<String>)>;
        type Out = BTreeMap<(String, String), BTreeSet<String>>;
        fn flush(out: &mut Out, item: &mut Item, path: &str, method: &str) {
            if let Some((Some(name), Some(loc))) = item.take() {
                if loc == "query" {
                    out.entry((method.to_uppercase(), path.to_string()))
                        .or_default()
                        .insert(name);
                }
            }
        }
        let mut out = Out::new();
        let (mut in_paths, mut path, mut method) = (false, String::new(), String::new());
        let mut item: Item = None;
        for line in yaml.lines() {
            if !line.starts_with(' ') && !line.is_empty() {
                flush(&mut out, &mut item, &path, &method);
                in_paths = line == "paths:";
                continue;
            }
            if !in_paths {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let t = line.trim();
            if indent == 2 && t.starts_with('/') && t.ends_with(':') {
                flush(&mut out, &mut item, &path, &method);
                path = t.trim_end_matches(':').to_string();
            } else if indent == 4 && t.ends_with(':') && !t.contains(' ') {
                flush(&mut out, &mut item, &path, &method);
                method = t.trim_end_matches(':').to_string();
                out.entry((method.to_uppercase(), path.clone()))
                    .or_default();
            } else if let Some(rest) = t.strip_prefix("- ") {
                flush(&mut out, &mut item, &path, &method);
                item = Some((None, None));
                let t = rest.trim();
                if let Some(n) = t.strip_prefix("name:") {
                    item = Some((Some(n.trim().trim_matches('"').to_string()), None));
                } else if let Some(l) = t.strip_prefix("in:") {
                    item = Some((None, Some(l.trim().trim_matches('"').to_string())));
                }
            } else if let Some((n, l)) = item.as_mut() {
                if let Some(v) = t.strip_prefix("name:") {
                    n.get_or_insert_with(|| v.trim().trim_matches('"').to_string());
                } else if let Some(v) = t.strip_prefix("in:") {
                    l.get_or_insert_with(|| v.trim().trim_matches('"').to_string());
                }
            }
        }
        flush(&mut out, &mut item, &path, &method);
        out
    }

    /// The API 1.44 swagger: `$WHARF_SWAGGER`, else from the moby mirror when it is there.
    fn swagger() -> Option<String> {
        if let Ok(p) = std::env::var("WHARF_SWAGGER") {
            return std::fs::read_to_string(p).ok();
        }
        let out = std::process::Command::new("git")
            .args([
                "-C",
                "/work/.mirror/moby+moby/repo",
                "show",
                "v25.0.0:api/swagger.yaml",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn every_swagger_parameter_of_every_served_endpoint_has_a_row() {
        let Some(yaml) = swagger() else {
            crate::test_skip::skip("no swagger (set WHARF_SWAGGER, or mirror moby)");
            return;
        };
        let spec = swagger_query_params(&yaml);
        assert!(
            spec.len() > 100,
            "the swagger parse found {} operations",
            spec.len()
        );
        for ep in ENDPOINTS {
            let want = spec
                .get(&(ep.method.to_string(), ep.path.to_string()))
                .unwrap_or_else(|| panic!("{} {} is not in the swagger", ep.method, ep.path));
            let have: BTreeSet<String> = ep.params.iter().map(|(n, _)| n.to_string()).collect();
            assert_eq!(&have, want, "{} {}", ep.method, ep.path);
        }
    }

    #[test]
    fn image_routes_map_to_swagger_paths() {
        let m = |s: &str| Method::from_bytes(s.as_bytes()).unwrap();
        let img = "/images/{*rest}";
        assert_eq!(
            swagger_path(&m("GET"), img, "/images/json"),
            Some("/images/json")
        );
        assert_eq!(
            swagger_path(&m("GET"), img, "/images/localhost:5000/a/b:1/json"),
            Some("/images/{name}/json")
        );
        assert_eq!(
            swagger_path(&m("DELETE"), img, "/images/a/b"),
            Some("/images/{name}")
        );
        assert_eq!(swagger_path(&m("POST"), img, "/images/a/push"), None);
        for e in ENDPOINTS {
            assert!(endpoint(&m(e.method), e.path).is_some());
        }
    }
}
