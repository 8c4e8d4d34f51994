//! TTY containers: the initial console size and `POST /containers/{id}/resize`. The pty master
//! lives in the shim, so a resize is a request to it and survives wharfd restarts.

use super::{shim, ContainerService};
use crate::error::EngineError;
use wharf_runtime::shim_proto::Request;

impl ContainerService {
    /// Docker's behaviour: a stopped container is a conflict; a running one without a TTY has
    /// no console to resize, which containerd (and so dockerd) answers with success.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        if !c.is_running() {
            return Err(EngineError::NotRunning(c.id().to_string()));
        }
        if !c.spec.config.tty {
            return Ok(());
        }
        shim::request(&self.exec_dir(c.id()), &Request::Resize { height, width })
            .await
            .map_err(|e| EngineError::shim(c.id(), "resizing the tty", e))?;
        self.emit(
            &c,
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }
}
