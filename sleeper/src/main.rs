use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = loco_sleeper::Args::parse();
    loco_core::telemetry::init_logging("loco-sleeper", args.log_format);
    loco_sleeper::run(args).await?;
    Ok(())
}
