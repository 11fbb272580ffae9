//! The web UI in `web/` is embedded into the gateway at build time
//! (`include_dir!`), which cargo does not track: rebuild when it changes.

fn main() {
    println!("cargo:rerun-if-changed=../web");
}
