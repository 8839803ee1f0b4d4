//! `sqlx::migrate!` embeds `migrations/` at compile time; rebuild when it changes, so a
//! new migration file is never silently left out.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
