//! `version`, `info` and the type-detecting `inspect`.

use super::{out, Ctx, Exit};
use crate::format::template::Template;
use crate::format::{indent_json, units};
use anyhow::Result;
use serde_json::{json, Value};
use wharf_api::version::API_VERSION;
use wharf_client::encode;

fn client_version(ctx: &Ctx) -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION.to_string(),
        "DefaultAPIVersion": API_VERSION.to_string(),
        "GitCommit": "",
        "GoVersion": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": ctx.context,
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn render_template(format: &str, data: &Value) -> Result<String> {
    let t = Template::parse(format)
        .map_err(|e| Exit::error(1, format!("template parsing error: {e:#}")))?;
    t.render(data)
        .map_err(|e| Exit::error(1, format!("template: {e:#}")))
}

pub async fn version(ctx: &Ctx, format: Option<&str>) -> Result<i32> {
    let client = client_version(ctx);
    let server = ctx.get("/version").await;
    if let Some(f) = format {
        let data = json!({"Client": client, "Server": server.as_ref().ok()});
        out(format!("{}\n", render_template(f, &data)?).as_bytes());
        return server.map(|_| 0).map_err(|e| ctx.err(1, &e));
    }
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut text = format!(
        "Client:\n Version:           {}\n API version:       {}\n OS/Arch:           {}/{}\n Context:           {}\n",
        s(&client, "Version"),
        s(&client, "ApiVersion"),
        s(&client, "Os"),
        s(&client, "Arch"),
        ctx.context
    );
    let server = match server {
        Ok(v) => v,
        Err(e) => {
            out(text.as_bytes());
            return Err(ctx.err(1, &e));
        }
    };
    let platform = server
        .pointer("/Platform/Name")
        .and_then(Value::as_str)
        .unwrap_or("");
    text.push_str(&format!(
        "\nServer: {platform}\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  Git commit:       {}\n  Built:            {}\n  OS/Arch:          {}/{}\n",
        s(&server, "Version"),
        s(&server, "ApiVersion"),
        s(&server, "MinAPIVersion"),
        s(&server, "GitCommit"),
        s(&server, "BuildTime"),
        s(&server, "Os"),
        s(&server, "Arch"),
    ));
    out(text.as_bytes());
    Ok(0)
}

pub async fn info(ctx: &Ctx, format: Option<&str>) -> Result<i32> {
    let info = ctx.get("/info").await.map_err(|e| ctx.err(1, &e))?;
    if let Some(f) = format {
        out(format!("{}\n", render_template(f, &info)?).as_bytes());
        return Ok(0);
    }
    let g = |k: &str| match info.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let mem = info.get("MemTotal").and_then(Value::as_f64).unwrap_or(0.0);
    let text = format!(
        "Client:\n Version:    {}\n Context:    {}\n Debug Mode: {}\n\nServer:\n Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n",
        env!("CARGO_PKG_VERSION"),
        ctx.context,
        crate::log::enabled(crate::log::Level::Debug),
        g("Containers"),
        g("ContainersRunning"),
        g("ContainersPaused"),
        g("ContainersStopped"),
        g("Images"),
        g("ServerVersion"),
        g("Driver"),
        g("LoggingDriver"),
        g("CgroupDriver"),
        g("CgroupVersion"),
        g("KernelVersion"),
        g("OperatingSystem"),
        g("OSType"),
        g("Architecture"),
        g("NCPU"),
        units::bytes_size(mem),
        g("Name"),
        g("ID"),
        g("DockerRootDir"),
        g("Debug"),
    );
    out(text.as_bytes());
    Ok(0)
}

/// Without `--type`, a name is tried as a container, then as an image, as docker does; each
/// object found is printed (JSON array or one template line each), the rest are errors, exit 1.
pub async fn inspect(
    ctx: &Ctx,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
    size: bool,
) -> Result<i32> {
    let template = match format {
        Some(f) if !f.is_empty() && f != "json" => Some(
            Template::parse(f)
                .map_err(|e| Exit::error(1, format!("template parsing error: {e:#}")))?,
        ),
        _ => None,
    };
    if let Some(k) = kind {
        if !matches!(k, "container" | "image") {
            return Err(Exit::error(
                1,
                format!("\"{k}\" is not a valid value for --type"),
            ));
        }
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let container_path = format!(
            "/containers/{}/json{}",
            encode(name),
            if size { "?size=1" } else { "" }
        );
        let image_path = format!(
            "/images/{}/json",
            encode(name).replace("%2F", "/").replace("%3A", ":")
        );
        let paths: Vec<&str> = match kind {
            Some("container") => vec![&container_path],
            Some("image") => vec![&image_path],
            _ => vec![&container_path, &image_path],
        };
        let mut result = None;
        let mut last_err = None;
        for p in paths {
            match ctx.get(p).await {
                Ok(v) => {
                    result = Some(v);
                    break;
                }
                Err(e) if kind.is_none() && matches!(e.status(), Some(404) | Some(501)) => {}
                Err(e) => {
                    last_err = Some(ctx.msg(&e));
                    break;
                }
            }
        }
        match (result, last_err) {
            (Some(v), _) => found.push(v),
            (None, Some(e)) => errors.push(e),
            (None, None) => errors.push(format!("Error: No such object: {name}")),
        }
    }
    let text = match &template {
        Some(t) => {
            let mut s = String::new();
            for v in &found {
                s.push_str(
                    &t.render(v)
                        .map_err(|e| Exit::error(1, format!("template: {e:#}")))?,
                );
                s.push('\n');
            }
            s
        }
        None => format!("{}\n", indent_json(&Value::Array(found))),
    };
    out(text.as_bytes());
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}
