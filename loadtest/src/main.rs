//! `ringway-load`: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = ringway_load::cli::Cli::parse();
    match ringway_load::run_cli(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ringway-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}
