use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = loco_snapshotter::Args::parse();
    loco_telemetry::init_logging("loco-snapshot", args.log.log_format);
    loco_telemetry::exit::report(loco_snapshotter::run(args).await)
}
