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
    // `type` (API >= 1.42): which parts to compute; an unknown one is a 400.
    ep("GET", "/system/df", &[("type", Applied)]),
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
    // `docker cp` and `docker export` (routes/archive.rs).
    ep("HEAD", "/containers/{id}/archive", &[("path", Applied)]),
    ep("GET", "/containers/{id}/archive", &[("path", Applied)]),
    ep(
        "PUT",
        "/containers/{id}/archive",
        &[
            ("path", Applied),
            ("noOverwriteDirNonDir", Applied),
            ("copyUIDGID", Applied),
        ],
    ),
    ep("GET", "/containers/{id}/export", &[]),
    ep("GET", "/containers/{id}/changes", &[]),
    // `changes`: the --change dialect import reads too; `pause` defaults to true (API 1.13+).
    ep(
        "POST",
        "/commit",
        &[
            ("container", Applied),
            ("repo", Applied),
            ("tag", Applied),
            ("comment", Applied),
            ("author", Applied),
            ("changes", Applied),
            ("pause", Applied),
        ],
    ),
    // `digests`: RepoDigests are always in the answer (pulled images have them), as dockerd's.
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
    // `fromImage` pulls: with `tag` (a tag or a digest; none with a bare name is every tag),
    // `platform` (the index entry, or dockerd's warning for a single-platform image) and the
    // `X-Registry-Auth` header (`fromSrc`, `repo`, `message` and `changes` beside `fromImage` are a
    // 400: dockerd drops them on a pull). Without it, `fromSrc=-` imports (`repo`, `tag`, `message`,
    // `changes`, `platform`); `fromSrc=<url>` is refused by the handler with a 501.
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
    // `docker save`: every image `names` selects (`platform`, API 1.48, is refused by the
    // handler), and one image by name.
    ep("GET", "/images/get", &[("names", Applied)]),
    ep("GET", "/images/{name}/get", &[]),
    // `docker load`: `quiet` (true when absent, as dockerd reads it).
    ep("POST", "/images/load", &[("quiet", Applied)]),
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
    // `tag`: the tag to push; none pushes every tag of the repository. With `X-Registry-Auth`.
    ep("POST", "/images/{name}/push", &[("tag", Applied)]),
    ep("POST", "/auth", &[]),
    ep("GET", "/distribution/{name}/json", &[]),
    ep("POST", "/volumes/create", &[]),
    ep("GET", "/volumes", &[("filters", Applied)]),
    ep("GET", "/volumes/{name}", &[]),
    // `force`: an unknown name is no error.
    ep("DELETE", "/volumes/{name}", &[("force", Applied)]),
    ep("POST", "/volumes/prune", &[("filters", Applied)]),
];

/// The swagger path of a request, from axum's matched route; image routes are matched by
/// hand (names contain `/`), so their operation is read from the path's end.
fn swagger_path<'a>(method: &Method, matched: &'a str, path: &str) -> Option<&'a str> {
    if matched == "/distribution/{*rest}" {
        return path
            .ends_with("/json")
            .then_some("/distribution/{name}/json");
    }
    if matched != "/images/{*rest}" {
        return Some(matched);
    }
    let rest = path.strip_prefix("/images/")?;
    Some(match (method.as_str(), rest) {
        ("GET", "json") => "/images/json",
        ("POST", "create") => "/images/create",
        ("GET", r) if r.ends_with("/json") => "/images/{name}/json",
        ("GET", r) if r.ends_with("/history") => "/images/{name}/history",
        ("GET", r) if r.ends_with("/get") => "/images/{name}/get",
        ("POST", r) if r.ends_with("/tag") => "/images/{name}/tag",
        ("POST", r) if r.ends_with("/push") => "/images/{name}/push",
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

    /// `(METHOD, path) → query parameter names` of every operation of API 1.44's swagger,
    /// extracted into a checked-in list by scripts/swagger-query-params.py.
    fn swagger_query_params() -> BTreeMap<(String, String), BTreeSet<String>> {
        include_str!("params/swagger-1.44-query.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut words = l.split_whitespace().map(str::to_string);
                let method = words.next().unwrap_or_default();
                let path = words.next().unwrap_or_default();
                ((method, path), words.collect())
            })
            .collect()
    }

    #[test]
    fn every_swagger_parameter_of_every_served_endpoint_has_a_row() {
        let spec = swagger_query_params();
        assert!(
            spec.len() > 100,
            "the swagger list has {} operations",
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
        assert_eq!(
            swagger_path(&m("POST"), img, "/images/a/push"),
            Some("/images/{name}/push")
        );
        assert_eq!(swagger_path(&m("POST"), img, "/images/a/frob"), None);
        assert_eq!(
            swagger_path(
                &m("GET"),
                "/distribution/{*rest}",
                "/distribution/a/b:1/json"
            ),
            Some("/distribution/{name}/json")
        );
        for e in ENDPOINTS {
            assert!(endpoint(&m(e.method), e.path).is_some());
        }
    }
}
