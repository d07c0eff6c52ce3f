//! The `xscan` binary: parse the command line, run, map the outcome to an exit code
//! (0 clean, 1 failures, 2 usage/config/rule error, 3 scan incomplete).

use std::io::Write;

use clap::Parser;

fn main() {
    let cli = xscan::cli::Cli::parse();
    let code = match xscan::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            error.exit_code()
        }
    };
    std::process::exit(code);
}
