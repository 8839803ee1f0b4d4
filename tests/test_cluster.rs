//! `cargo run -p tests --bin test-cluster -- stop|status`: the shared PostgreSQL
//! cluster the test suite starts on first use (`make test` stops it at the end).

use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = store::testing::test_cluster_dir();
    match std::env::args().nth(1).as_deref() {
        Some("stop") => match embedded::postgres::stop_dir(&dir) {
            Ok(true) => {
                println!("stopped the test cluster in {}", dir.display());
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("no test cluster running in {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some("status") => {
            match embedded::postgres::status(&dir) {
                Some(port) => println!(
                    "running on 127.0.0.1:{port} ({}; user postgres, password in {})",
                    dir.display(),
                    embedded::postgres::password_file(&dir).display()
                ),
                None => println!("not running ({})", dir.display()),
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: test-cluster stop|status");
            ExitCode::from(2)
        }
    }
}
