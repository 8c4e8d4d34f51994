//! TTY containers: the initial console size and `POST /containers/{id}/resize`. The pty master
//! lives in the shim, so a resize is a request to it and survives wharfd restarts.

use super::{shim, ContainerService};
use serde_json::{Map, Value};
use wharf_api::ApiError;
use wharf_runtime::shim_proto::Request;

/// `HostConfig.ConsoleSize` (`[height, width]`), which `docker run -t` fills; zeros mean unset.
pub(crate) fn console_size(host_config_extra: &Map<String, Value>) -> Option<(u16, u16)> {
    let v = host_config_extra.get("ConsoleSize")?.as_array()?;
    let h = u16::try_from(v.first()?.as_u64()?).ok()?;
    let w = u16::try_from(v.get(1)?.as_u64()?).ok()?;
    (h > 0 && w > 0).then_some((h, w))
}

impl ContainerService {
    /// Docker's behaviour: a stopped container is a conflict; a running one without a TTY has
    /// no console to resize, which containerd (and so dockerd) answers with success.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), ApiError> {
        let c = self.resolve(name)?;
        if !c.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id()
            )));
        }
        if !c.spec.config.tty {
            return Ok(());
        }
        shim::request(&self.exec_dir(c.id()), &Request::Resize { height, width })
            .await
            .map_err(|e| ApiError::internal(format!("resizing the container's tty: {e}")))?;
        self.emit(
            &c,
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_console_size() {
        let m: Map<String, Value> = serde_json::from_str(r#"{"ConsoleSize":[40,120]}"#).unwrap();
        assert_eq!(console_size(&m), Some((40, 120)));
        let m: Map<String, Value> = serde_json::from_str(r#"{"ConsoleSize":[0,0]}"#).unwrap();
        assert_eq!(console_size(&m), None);
        assert_eq!(console_size(&Map::new()), None);
    }
}
