use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = loco_core::cli::Args::parse();
    loco_core::telemetry::init_logging("loco-api", args.log_format);
    loco_core::cli::run(args).await
}
