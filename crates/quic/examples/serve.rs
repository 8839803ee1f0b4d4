//! Standalone QUIC endpoint for manual testing of `pixsim-client`:
//! `cargo run -p quic --example serve -- [BIND] [STATE_DIR]`
//! (defaults `127.0.0.1:4433` and `.pixsim`). Ctrl-C stops it gracefully.

use std::net::SocketAddr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bind: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:4433").parse()?;
    let state_dir = args.next().unwrap_or_else(|| ".pixsim".to_owned());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let cfg = quic::QuicConfig::new(bind, state_dir, "pixsim-quic-example 0.0.0");
        let server = quic::QuicServer::bind(cfg)?;
        println!("QUIC listening on {}", server.local_addr());
        println!(
            "certificate fingerprint (sha-256): {}",
            server.fingerprint()
        );
        server
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
