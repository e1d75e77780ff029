//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the `migrations/` folders at
//! compile time, and without this Cargo does not know to look at them (a new file would be
//! left out of an incremental build).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
