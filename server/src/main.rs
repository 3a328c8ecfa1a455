//! `comms`: a self-hostable real-time communication server.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    comms_server::cli::Cli::parse().run()
}
