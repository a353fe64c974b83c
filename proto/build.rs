//! Compile `taustar.proto` with the pure-Rust `protox` (no `protoc` binary is needed or
//! downloaded), then generate prost messages and tonic client/server stubs from it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=taustar.proto");
    let fds = protox::compile(["taustar.proto"], ["."])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
