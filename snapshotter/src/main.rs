use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = loco_snapshotter::Args::parse();
    loco_core::telemetry::init_logging("loco-snapshot", args.log_format);
    loco_snapshotter::run(args).await?;
    Ok(())
}
