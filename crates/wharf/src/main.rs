//! `wharf`: a drop-in for the docker CLI's container, image and system commands, talking to
//! wharfd (or any Docker-compatible daemon) through `wharf-client`.

// The create body is one big `json!` literal (docker's field list, read at a glance).
#![recursion_limit = "256"]

mod cli;
mod commands;
mod exit;
mod format;
mod host;
mod jsonmessage;
mod log;
mod opts;
mod registry;

use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd};
use commands::{Ctx, Exit};
use std::io::Write;

fn main() {
    // A panic must not leave the user's terminal raw either.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        commands::tty::restore_terminal();
        default_hook(info);
    }));
    let code = real_main();
    // Whatever path led here (success, an error, a detach), the terminal goes back to how the
    // user had it.
    commands::tty::restore_terminal();
    let _ = std::io::stdout().flush();
    // Exit without dropping the runtime: a blocking stdin read may still be pending and the
    // runtime's drop would wait for it.
    std::process::exit(code);
}

fn real_main() -> i32 {
    let mut cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // docker exits 125 for usage errors.
                _ => 125,
            };
        }
    };
    if let Err(msg) = log::configure(cli.log_level.as_deref(), cli.debug) {
        eprintln!("{msg}");
        return 1;
    }
    if cli.version {
        println!("wharf version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if let Some(dir) = &cli.config {
        // Before any thread exists, so changing the environment cannot race a reader.
        std::env::set_var("WHARF_CONFIG", dir);
    }
    let Some(cmd) = cli.cmd.take() else {
        let _ = Cli::command().print_help();
        return 0;
    };
    match &cmd {
        Cmd::Completion { shell } => {
            // Into a buffer first: clap_complete panics when its writer fails (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "wharf", &mut script);
            commands::out(&script);
            return 0;
        }
        Cmd::Context(c) => {
            return report(commands::context::run(c, &host::Store::from_env()));
        }
        _ => {}
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let ctx = match Ctx::connect(&cli) {
        Ok(c) => c,
        Err(e) => return report(Err(e)),
    };
    let result = rt.block_on(commands::dispatch(&ctx, cmd));
    let code = report(result);
    std::mem::forget(rt);
    code
}

/// Prints an error as docker does (just its message on stderr) and turns it into the exit code.
fn report(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<Exit>() {
                if !exit.message.is_empty() {
                    eprintln!("{}", exit.message);
                }
                return exit.code;
            }
            if let Some(ce) = e.downcast_ref::<wharf_client::ClientError>() {
                eprintln!("{}", commands::client_message(ce, None));
                return 1;
            }
            eprintln!("{e:#}");
            1
        }
    }
}
