use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = loco_core::cli::Args::parse();
    loco_core::telemetry::init_logging("loco-api", args.log.log_format);
    loco_core::exit::report(loco_core::cli::run(args).await)
}
