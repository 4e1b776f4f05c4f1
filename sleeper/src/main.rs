use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = loco_sleeper::Args::parse();
    loco_telemetry::init_logging("loco-sleeper", args.log.log_format);
    loco_telemetry::exit::report(loco_sleeper::run(args).await)
}
