//! The `xscan` binary: parse the command line, run, map the outcome to an exit code
//! (0 clean, 1 failures, 2 usage/config/rule error, 3 scan incomplete, 4 history locked).

use std::io::Write;

/// Evaluation allocates many small JSON values; mimalloc keeps that fast at 100k resources.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = xscan::cli::Cli::parse_args();
    // Silent unless asked: cron runs must not produce noise.
    let filter = match cli.verbose {
        0 => "off",
        1 => "xscan=info",
        2 => "xscan=debug",
        _ => "xscan=trace,aws_config=debug,aws_smithy_runtime=debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let code = match xscan::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // Messages quote file contents and AWS values: shown, never obeyed by the terminal.
            let message = error.to_string();
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                xscan::text::visible_lines(&message)
            );
            error.exit_code()
        }
    };
    std::process::exit(code);
}
