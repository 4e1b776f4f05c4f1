use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = loco_resurrector::Args::parse();
    loco_telemetry::init_logging("loco-resurrect", args.log.log_format);
    loco_resurrector::error::exit(loco_resurrector::run(args).await)
}
