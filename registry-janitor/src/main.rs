use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = loco_registry_janitor::Args::parse();
    loco_core::telemetry::init_logging("loco-registry-janitor", args.log_format);
    loco_registry_janitor::run(args).await?;
    Ok(())
}
