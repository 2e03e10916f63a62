use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = ringway::cli::Cli::parse();
    std::process::exit(ringway::cli::main(cli));
}
