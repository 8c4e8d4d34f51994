//! Command-line syntax: docker's commands, flags and short options.

mod container_flags;
mod files;

pub use container_flags::{HostFlags, ResourceFlags};
pub use files::{
    CommitArgs, ContainerArg, CpArgs, ExportArgs, LoadArgs, SaveArgs, VolumeCmd, VolumeCreateArgs,
    VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    about = "A self-sufficient runtime for containers (Docker-compatible)",
    disable_version_flag = true,
    subcommand_required = false,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path or tcp://host:port)
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Name of the context to use (overrides WHARF_HOST, DOCKER_HOST and `context use`)
    #[arg(short = 'c', long)]
    pub context: Option<String>,
    /// Location of client config files: contexts (default ~/.wharf, or $WHARF_CONFIG) and
    /// registry credentials, in docker's config.json (default ~/.docker, or $DOCKER_CONFIG)
    #[arg(long, value_name = "DIR")]
    pub config: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the remote
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<String>,
    /// Path to TLS certificate file
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<String>,
    /// Path to TLS key file
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal") (default "info")
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

// Each subcommand's flags are built only when that subcommand runs: building all ~600 of them
// cost every invocation ~0.5 ms of CPU.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArg),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArg),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArg),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// List images
    Images(ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Authenticate to a registry (Docker Hub when no server is given)
    Login(LoginArgs),
    /// Log out from a registry (Docker Hub when no server is given)
    Logout(LogoutArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Show the wharf version information
    Version(FormatOnly),
    /// Display system-wide information
    Info(FormatOnly),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Manage contexts
    #[command(subcommand)]
    Context(ContextCmd),
    /// Generate a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContainerCmd {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArg),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArg),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArg),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Display detailed information on one or more containers
    Inspect(TypedInspectArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCmd {
    /// List images
    #[command(visible_aliases = ["list"])]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(TypedInspectArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContextCmd {
    /// Create a context
    Create(ContextCreateArgs),
    /// List contexts
    #[command(visible_alias = "list")]
    Ls {
        /// Only show context names
        #[arg(short, long)]
        quiet: bool,
        /// Format output using a custom template
        #[arg(long)]
        format: Option<String>,
    },
    /// Set the current wharf context
    Use { name: String },
    /// Remove one or more contexts
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
        /// Force the removal of a context in use
        #[arg(short, long)]
        force: bool,
    },
    /// Display detailed information on one or more contexts
    Inspect {
        names: Vec<String>,
        /// Format output using a custom template
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Print the name of the current context
    Show,
}

#[derive(Debug, Args)]
pub struct ContextCreateArgs {
    pub name: String,
    /// Description of the context
    #[arg(long, default_value = "")]
    pub description: String,
    /// set the docker endpoint: host=...,ca=...,cert=...,key=...,skip-tls-verify=bool
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub docker: Option<String>,
}

// Flags shared by `run` and `create`.
#[derive(Debug, Args)]
pub struct ContainerOpts {
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub init: Option<bool>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-interval",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-timeout",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(
        long = "health-retries",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-start-period",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(
        long = "health-start-interval",
        value_name = "duration",
        allow_hyphen_values = true
    )]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container
    #[arg(short, long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net", value_name = "network")]
    pub network: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    #[command(flatten)]
    pub host: HostFlags,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub image_and_cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    /// COMMAND [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short, long = "timeout", visible_alias = "time")]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
    /// Options passed to ps, e.g. `-o pid,comm`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long)]
    pub restart: Option<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short, long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct ContainersArg {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template ('table', 'json' or a Go template)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of the given type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template ('table', 'json' or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|- (a tar file, or - for STDIN)
    pub source: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image verification (default true)
    #[arg(long = "disable-content-trust", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub disable_content_trust: Option<bool>,
    /// Set platform if server is multi-platform capable (default $DOCKER_DEFAULT_PLATFORM)
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image signing (default true)
    #[arg(long = "disable-content-trust", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub disable_content_trust: Option<bool>,
    /// Push a platform-specific manifest as a single-platform image to the registry (API 1.46)
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long, value_name = "string")]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short, long, value_name = "string")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// SERVER
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// SERVER
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct FormatOnly {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
}
