//! Image wire types: list summary, inspect, history, delete answer.

use crate::container::ContainerConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub containers: i64,
    pub created: i64,
    #[serde(rename = "Id")]
    pub id: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub parent_id: String,
    pub repo_digests: Vec<String>,
    pub repo_tags: Vec<String>,
    pub shared_size: i64,
    pub size: i64,
    pub virtual_size: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    #[serde(rename = "Id")]
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    /// Deprecated: the container an image was committed from; given before API 1.45.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Deprecated: that container's config (a zero Config for imported images); given before
    /// API 1.45. compose 1.29 reads it when it recreates containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    pub docker_version: String,
    pub author: String,
    pub config: ContainerConfig,
    pub architecture: String,
    /// The CPU variant (`v8`), when the image's config names one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    pub os: String,
    pub size: i64,
    /// Deprecated: equal to `Size`, given only before API 1.44.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
    pub graph_driver: crate::container::GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    #[serde(rename = "Id")]
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Option<Vec<String>>,
    pub size: i64,
    pub comment: String,
}

impl ImageInspect {
    /// dockerd's per-version shape (moby v25 `getImagesByName`, and 1.45's removal of
    /// `Container`/`ContainerConfig`).
    pub fn for_version(mut self, major: u32, minor: u32) -> Self {
        let v = (major, minor);
        if v >= (1, 45) {
            self.container = None;
            self.container_config = None;
        }
        self.virtual_size = (v < (1, 44)).then_some(self.size);
        self
    }
}

/// One entry of the `DELETE /images/{name}` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum ImageDeleteItem {
    Untagged(String),
    Deleted(String),
}
