//! Syntax of the commands that move data: `volume ...`, `cp`, `diff`, `export`, `commit`,
//! `save`, `load`, with docker's flags and short options.

use clap::{ArgAction, Args, Subcommand};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local", value_name = "string")]
    pub driver: String,
    /// Specify volume name
    #[arg(long, hide = true, value_name = "string")]
    pub name: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// VOLUME
    #[arg(value_name = "VOLUME")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template ('table', 'json' or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// (none: refused with docker's words)
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// (none: refused with docker's words)
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if
    /// no terminal is attached
    #[arg(short, long, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub quiet: Option<bool>,
    /// CONTAINER:SRC_PATH DEST_PATH|- or SRC_PATH|- CONTAINER:DEST_PATH
    #[arg(value_name = "SRC DEST")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerArg {
    #[arg(value_name = "CONTAINER")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    /// CONTAINER [REPOSITORY[:TAG]]; flags after CONTAINER are arguments, as docker stops
    /// reading flags there
    #[arg(
        value_name = "CONTAINER [REPOSITORY[:TAG]]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    pub output: Option<String>,
    /// Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g.,
    /// "linux/amd64")
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
    /// Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g.,
    /// "linux/amd64")
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// (none: refused with docker's words)
    #[arg(hide = true)]
    pub args: Vec<String>,
}
