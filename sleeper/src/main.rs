use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = loco_sleeper::Args::parse();
    loco_core::telemetry::init_logging("loco-sleeper", args.log.log_format);
    loco_core::exit::report(loco_sleeper::run(args).await)
}
