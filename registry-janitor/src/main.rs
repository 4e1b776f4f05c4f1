use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = loco_registry_janitor::Args::parse();
    loco_telemetry::init_logging("loco-registry-janitor", args.log.log_format);
    loco_telemetry::exit::report(loco_registry_janitor::run(args).await)
}
