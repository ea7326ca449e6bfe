// `embed_migrations!` reads the migration directories at compile time but cannot tell
// cargo to watch them: without this, a new migration is not embedded until some source
// file changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations_db1");
    println!("cargo:rerun-if-changed=migrations_db2");
}
