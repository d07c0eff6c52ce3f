//! The simulated AWS as a program, for `bench/scale.sh`: `serve` answers on a loopback port
//! until `POST /__sim/shutdown` (its figures at `GET /__sim/stats`); `estate` writes the xscan
//! configuration and the Cloud Custodian accounts file for N consumer accounts.
//!
//! `cargo bench --bench awssim -- serve --accounts 100 --latency-ms 50 --throttle aws`
#![allow(clippy::print_stdout)]

#[path = "../tests/awssim/mod.rs"]
mod awssim;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Answer xscan's and Cloud Custodian's calls for a simulated estate.
    Serve {
        /// Consumer accounts (one data account per ten).
        #[arg(long)]
        accounts: usize,
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Writes the port here once listening.
        #[arg(long)]
        port_file: Option<std::path::PathBuf>,
        #[arg(long, default_value = awssim::RECORDING)]
        recording: std::path::PathBuf,
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// `aws` (the limits in tests/awssim), `off`, or `SERVICE=BURST/REFILL,...`.
        #[arg(long, default_value = "aws")]
        throttle: String,
        /// One request in N gets a fault (0: none).
        #[arg(long, default_value_t = 0)]
        fault_one_in: u64,
        /// Comma-separated: 500, 503, reset, slow, truncated, cut.
        #[arg(long, default_value = "500,503,reset,truncated,cut")]
        faults: String,
        #[arg(long, default_value_t = 5_000)]
        slow_ms: u64,
        /// Actions always answered with AccessDenied (`sagemaker:DescribeNotebookInstance`).
        #[arg(long, value_delimiter = ',')]
        deny: Vec<String>,
    },
    /// Write the xscan config and the c7n-org accounts file of the simulated estate.
    Estate {
        #[arg(long)]
        accounts: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long)]
        xscan: std::path::PathBuf,
        #[arg(long)]
        c7n: std::path::PathBuf,
    },
}

fn main() -> Result<(), String> {
    match Cli::parse().command {
        Command::Serve {
            accounts,
            port,
            port_file,
            recording,
            latency_ms,
            jitter_ms,
            seed,
            throttle,
            fault_one_in,
            faults,
            slow_ms,
            deny,
        } => {
            let mut settings = awssim::Settings::new(accounts);
            settings.latency = Duration::from_millis(latency_ms);
            settings.jitter = Duration::from_millis(jitter_ms);
            settings.seed = seed;
            settings.limits = match throttle.as_str() {
                "aws" => awssim::aws_limits(),
                "off" => Default::default(),
                custom => custom
                    .split(',')
                    .map(|spec| {
                        let (service, rate) = spec.split_once('=').ok_or(spec)?;
                        let (burst, refill) = rate.split_once('/').ok_or(spec)?;
                        let number = |s: &str| s.parse::<f64>().map_err(|_| spec);
                        Ok((
                            service.to_string(),
                            awssim::Limit {
                                burst: number(burst)?,
                                refill: number(refill)?,
                            },
                        ))
                    })
                    .collect::<Result<_, &str>>()
                    .map_err(|spec| format!("--throttle: cannot read {spec:?}"))?,
            };
            settings.fault_one_in = fault_one_in;
            settings.faults = faults
                .split(',')
                .filter(|f| !f.is_empty())
                .map(|f| awssim::Fault::parse(f).ok_or(format!("--faults: unknown {f:?}")))
                .collect::<Result<_, _>>()?;
            settings.slow = Duration::from_millis(slow_ms);
            settings.deny = deny.into_iter().collect();
            let recording = std::fs::read_to_string(&recording)
                .map_err(|e| format!("{}: {e}", recording.display()))?;
            let simulator = awssim::Simulator::start(settings, &recording, port)?;
            let url = simulator.url();
            if let Some(file) = port_file {
                let port = url.rsplit(':').next().unwrap_or_default();
                std::fs::write(&file, port).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            println!("{url} ({} recorded exchanges)", simulator.recorded());
            simulator.wait();
            Ok(())
        }
        Command::Estate {
            accounts,
            concurrency,
            xscan,
            c7n,
        } => {
            let (xscan_config, c7n_accounts) = awssim::estate_configs(accounts, concurrency);
            std::fs::write(&xscan, xscan_config).map_err(|e| e.to_string())?;
            std::fs::write(&c7n, c7n_accounts).map_err(|e| e.to_string())?;
            Ok(())
        }
    }
}
