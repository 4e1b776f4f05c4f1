use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = loco_preflight::Args::parse();
    loco_preflight::init_logging(args.log_json);
    let code = loco_preflight::run(args).await?;
    std::process::exit(code);
}
