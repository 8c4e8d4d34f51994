//! `/version` and `/info` answers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    pub details: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PlatformName {
    #[serde(rename = "Name")]
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub platform: PlatformName,
    pub components: Vec<ComponentVersion>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub build_time: String,
}

/// `/info` is large and mostly static; the engine fills a JSON object with Docker's keys.
pub type Info = Value;

/// `GET /system/df` (`types.DiskUsage`). A part not asked for (`?type=`) is `null`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    pub layers_size: i64,
    pub images: Option<Vec<crate::image::ImageSummary>>,
    pub containers: Option<Vec<crate::container::ContainerSummary>>,
    pub volumes: Option<Vec<crate::volume::Volume>>,
    pub build_cache: Option<Vec<Value>>,
    /// Deprecated since API 1.38; dockerd omits it when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub builder_size: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}
