use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = loco_resurrector::Args::parse();
    loco_core::telemetry::init_logging("loco-resurrect", args.log_format);
    loco_resurrector::run(args).await?;
    Ok(())
}
