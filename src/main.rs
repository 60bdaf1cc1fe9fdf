//! The `revaudit` binary: parse the command line, run the command, map errors to exit codes
//! (0 ok, 2 bad input or usage, 1 anything else), print errors with their context chain.

use clap::Parser;

fn main() {
    revaudit::pages::restart_with_large_pages();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("revaudit: internal error (please report this bug): {info}");
    }));
    let cli = revaudit::cli::Cli::parse();
    match revaudit::run(cli) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("revaudit: error: {e:#}");
            std::process::exit(revaudit::exit_code(&e));
        }
    }
}
