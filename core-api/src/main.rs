use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = loco_api::cli::Args::parse();
    loco_telemetry::init_logging("loco-api", args.log.log_format);
    loco_telemetry::exit::report(loco_api::cli::run(args).await)
}
