//! `images`, `import`, `tag`, `rmi`, `image history`.

use super::{filters_json, out, Ctx, Exit};
use crate::cli::{HistoryArgs, ImagesArgs, ImportArgs, RmiArgs, TagArgs};
use crate::format::{ellipsis, truncate_id, units, Format};
use crate::registry::reference::Reference;
use anyhow::Result;
use serde_json::{json, Value};
use std::io::Read;
use wharf_client::encode;

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_DIGESTS_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

fn images_headers() -> Value {
    json!({
        "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
        "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE",
    })
}

/// `name:tag` → (`name`, `tag`); the colon must come after the last `/` (a registry port is
/// not a tag). Without a tag, `latest`.
pub fn split_reference(reference: &str) -> (String, String) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (
            reference[..slash + i].to_string(),
            reference[slash + i + 1..].to_string(),
        ),
        None => (reference.to_string(), "latest".to_string()),
    }
}

/// The rows docker shows for one image (`imageFormatTaggedAndDigest`): one per
/// repository:tag, per digest of its repository too when digests are shown; a `<none>` tag
/// row for a repository known only by digest (pulled by digest, or untagged since); a single
/// `<none>` row for a dangling image. References docker cannot parse are skipped, as docker
/// skips them.
pub fn image_rows(img: &Value, trunc: bool, digests: bool, need_digest: bool) -> Vec<Value> {
    let strs = |k: &str| -> Vec<String> {
        img.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let n = |k: &str| img.get(k).and_then(Value::as_i64).unwrap_or(0);
    let tags = strs("RepoTags");
    let repo_digests = strs("RepoDigests");
    let id = img.get("Id").and_then(Value::as_str).unwrap_or("");
    let created = n("Created");
    let size = units::human_size(n("Size") as f64);
    let containers = match n("Containers") {
        -1 => "N/A".to_string(),
        c => c.to_string(),
    };
    let row = |repo: &str, tag: &str, digest: &str| {
        json!({
            "Repository": repo,
            "Tag": tag,
            "Digest": digest,
            "ID": if trunc { truncate_id(id) } else { id.to_string() },
            "CreatedSince": if created == 0 { "N/A".to_string() } else { units::since_ago(created) },
            "CreatedAt": units::go_time_string(created),
            "Size": size,
            "Containers": containers,
            "VirtualSize": size,
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
        })
    };
    let dangling = (tags.is_empty() && repo_digests.is_empty())
        || (tags == ["<none>:<none>"] && repo_digests == ["<none>@<none>"]);
    if dangling {
        return vec![row("<none>", "<none>", "<none>")];
    }
    // Repositories in the order first seen (docker walks a Go map: any order).
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &tags {
        let Ok(r) = Reference::parse_normalized_named(t) else {
            continue;
        };
        if let Some(tag) = r.tag() {
            let repo = r.familiar_name();
            match repo_tags.iter_mut().find(|(name, _)| *name == repo) {
                Some((_, list)) => list.push(tag.to_string()),
                None => repo_tags.push((repo, vec![tag.to_string()])),
            }
        }
    }
    let mut digest_map: Vec<(String, Vec<String>)> = Vec::new();
    for d in &repo_digests {
        let Ok(r) = Reference::parse_normalized_named(d) else {
            continue;
        };
        if let Some(digest) = r.digest() {
            let repo = r.familiar_name();
            match digest_map.iter_mut().find(|(name, _)| *name == repo) {
                Some((_, list)) => list.push(digest.to_string()),
                None => digest_map.push((repo, vec![digest.to_string()])),
            }
        }
    }
    let mut rows = Vec::new();
    for (repo, tags) in &repo_tags {
        let ds = match digest_map.iter().position(|(r, _)| r == repo) {
            Some(i) => digest_map.remove(i).1,
            None => Vec::new(),
        };
        let ds = if need_digest { ds } else { Vec::new() };
        for tag in tags {
            if ds.is_empty() {
                rows.push(row(repo, tag, "<none>"));
            }
            for d in &ds {
                rows.push(row(repo, tag, d));
            }
        }
    }
    for (repo, ds) in &digest_map {
        if digests {
            for d in ds {
                rows.push(row(repo, "<none>", d));
            }
        } else {
            rows.push(row(repo, "<none>", ""));
        }
    }
    rows
}

pub async fn images(ctx: &Ctx, a: &ImagesArgs) -> Result<i32> {
    let user = a.format.clone().unwrap_or_default();
    let default = if a.digests {
        IMAGES_DIGESTS_TABLE
    } else {
        IMAGES_TABLE
    };
    // docker adds the column to a table format of one's own that lacks it.
    let user = if a.digests
        && user.trim().starts_with("table")
        && user.trim() != "table"
        && !user.contains("{{.Digest}}")
    {
        format!("{user}\t{{{{.Digest}}}}")
    } else {
        user
    };
    let format = if a.quiet && matches!(user.trim(), "" | "table") {
        Format::new("{{.ID}}", default)?
    } else {
        Format::new(&user, default).map_err(|e| Exit::error(1, format!("{e:#}")))?
    };
    let need_digest = a.digests || user.contains("{{.Digest}}");
    let extra: Vec<(&str, &str)> = a
        .reference
        .as_deref()
        .map(|r| vec![("reference", r)])
        .unwrap_or_default();
    let mut q = Vec::new();
    if a.all {
        q.push("all=1".to_string());
    }
    if let Some(f) = filters_json(&a.filter, &extra)? {
        q.push(format!("filters={}", encode(&f)));
    }
    let path = wharf_client::with_query("/images/json", &q);
    let list = ctx.get(&path).await.map_err(|e| ctx.err(1, &e))?;
    let rows: Vec<Value> = list
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .flat_map(|img| image_rows(img, !a.no_trunc, a.digests, need_digest))
        .collect();
    out(format.render(&rows, &images_headers())?.as_bytes());
    Ok(0)
}

pub async fn import(ctx: &Ctx, a: &ImportArgs) -> Result<i32> {
    if a.source.starts_with("http://") || a.source.starts_with("https://") {
        return Err(Exit::error(
            1,
            "wharf: importing from a URL is not supported yet",
        ));
    }
    // Streamed as read: a rootfs tar can be bigger than memory.
    let tar: Box<dyn Read + Send> = if a.source == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&a.source)
                .map_err(|e| Exit::error(1, super::archive::path_err("open", &a.source, &e)))?,
        )
    };
    // docker sends the reference whole as `repo`, after checking that it parses.
    let repo = match &a.reference {
        Some(r) => {
            Reference::parse_normalized_named(r).map_err(|e| Exit::error(1, e.to_string()))?;
            r.clone()
        }
        None => String::new(),
    };
    // docker's query: Go's `url.Values.Encode`, keys sorted, values query-escaped.
    let esc = super::transfer::query_escape;
    let mut q: Vec<String> = a
        .change
        .iter()
        .map(|c| format!("changes={}", esc(c)))
        .collect();
    q.push("fromSrc=-".to_string());
    if let Some(m) = a.message.as_deref().filter(|m| !m.is_empty()) {
        q.push(format!("message={}", esc(m)));
    }
    if let Some(p) = a.platform.as_deref().filter(|p| !p.is_empty()) {
        q.push(format!("platform={}", esc(p)));
    }
    if !repo.is_empty() {
        q.push(format!("repo={}", esc(&repo)));
    }
    let resp = ctx
        .client
        .send_stream(
            wharf_client::Method::POST,
            &format!("/images/create?{}", q.join("&")),
            Some(wharf_client::read_body(tar)),
            &[("content-type", "text/plain")],
        )
        .await
        .map_err(|e| ctx.err(1, &e))?;
    if !resp.status.is_success() {
        let raw = resp.collect().await.map_err(|e| ctx.err(1, &e))?;
        return Err(ctx.err(1, &raw.into_api_error()));
    }
    // The daemon's answer is a message stream like a pull's (the new id as its status).
    super::distribution::show(resp, super::distribution::Sink::Stdout, &mut |_| {})
        .await
        .map_err(|e| Exit::error(1, e))?;
    Ok(0)
}

pub async fn tag(ctx: &Ctx, a: &TagArgs) -> Result<i32> {
    let (repo, tag) = split_reference(&a.target);
    ctx.client
        .tag_image(&a.source, &repo, &tag)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    Ok(0)
}

pub async fn rmi(ctx: &Ctx, a: &RmiArgs) -> Result<i32> {
    let mut errors = Vec::new();
    for name in &a.images {
        let mut path = format!(
            "/images/{}",
            encode(name).replace("%2F", "/").replace("%3A", ":")
        );
        let mut q = Vec::new();
        if a.force {
            q.push("force=1");
        }
        if a.no_prune {
            q.push("noprune=1");
        }
        if !q.is_empty() {
            path = format!("{path}?{}", q.join("&"));
        }
        match ctx
            .call(wharf_client::Method::DELETE, &path, None, false)
            .await
        {
            Ok(raw) => {
                let items: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
                for item in items.as_array().map(|a| a.as_slice()).unwrap_or_default() {
                    if let Some(u) = item.get("Untagged").and_then(Value::as_str) {
                        out(format!("Untagged: {u}\n").as_bytes());
                    }
                    if let Some(d) = item.get("Deleted").and_then(Value::as_str) {
                        out(format!("Deleted: {d}\n").as_bytes());
                    }
                }
            }
            Err(e) => errors.push(ctx.msg(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}

pub async fn history(ctx: &Ctx, a: &HistoryArgs) -> Result<i32> {
    let user = a.format.clone().unwrap_or_default();
    let format = if a.quiet && matches!(user.trim(), "" | "table") {
        Format::new("{{.ID}}", HISTORY_TABLE)?
    } else {
        Format::new(&user, HISTORY_TABLE).map_err(|e| Exit::error(1, format!("{e:#}")))?
    };
    let list = ctx
        .client
        .get_json::<Value>(&format!(
            "/images/{}/history",
            encode(&a.image).replace("%2F", "/").replace("%3A", ":")
        ))
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("<missing>");
            let created = h.get("Created").and_then(Value::as_i64).unwrap_or(0);
            let size = h.get("Size").and_then(Value::as_i64).unwrap_or(0);
            let by = h
                .get("CreatedBy")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\t', " ");
            json!({
                "ID": if trunc && id != "<missing>" { truncate_id(id) } else { id.to_string() },
                "CreatedSince": if a.human { units::since_ago(created) } else { units::go_time_string(created) },
                "CreatedAt": units::go_time_string(created),
                "CreatedBy": if trunc { ellipsis(&by, 45) } else { by },
                "Size": if a.human { units::human_size(size as f64) } else { size.to_string() },
                "Comment": h.get("Comment").and_then(Value::as_str).unwrap_or(""),
            })
        })
        .collect();
    let headers = json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    out(format.render(&rows, &headers)?.as_bytes());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_docker() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("busybox:1.36"),
            ("busybox".into(), "1.36".into())
        );
        assert_eq!(
            split_reference("localhost:5000/x"),
            ("localhost:5000/x".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/x:v1"),
            ("localhost:5000/x".into(), "v1".into())
        );
    }

    #[test]
    fn rows_per_tag_and_dangling() {
        let img = json!({"Id": "sha256:0123456789abcdef", "RepoTags": ["busybox:latest", "bb:v1"],
                         "RepoDigests": [], "Created": 0, "Size": 4_261_234, "Containers": -1});
        let rows = image_rows(&img, true, false, false);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[1]["Tag"], "v1");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["Size"], "4.26MB");
        assert_eq!(rows[0]["CreatedSince"], "N/A");
        // Digests: shown per tag of their repository with --digests, and a repository known
        // only by digest gets a `<none>` tag row.
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let pulled = json!({"Id": "sha256:0123456789abcdef",
            "RepoTags": ["localhost:5000/x:v1", "docker.io/library/busybox:latest"],
            "RepoDigests": [format!("localhost:5000/x@{d1}"), format!("other@{d2}"), "bad@x"]});
        let shown = |digests, need| -> Vec<(String, String, String)> {
            image_rows(&pulled, true, digests, need)
                .iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap().to_string();
                    (s("Repository"), s("Tag"), s("Digest"))
                })
                .collect()
        };
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            shown(true, true),
            vec![
                t("localhost:5000/x", "v1", &d1),
                t("busybox", "latest", "<none>"),
                t("other", "<none>", &d2)
            ]
        );
        assert_eq!(
            shown(false, false),
            vec![
                t("localhost:5000/x", "v1", "<none>"),
                t("busybox", "latest", "<none>"),
                t("other", "<none>", "")
            ]
        );
        let dangling = json!({"Id": "sha256:ab", "RepoTags": [], "RepoDigests": []});
        let rows = image_rows(&dangling, true, false, false);
        assert_eq!(rows[0]["Repository"], "<none>");
        assert_eq!(rows[0]["Tag"], "<none>");
    }
}
