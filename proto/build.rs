//! Compile `taustar.proto` with the pure-Rust `protox` (no `protoc` binary is needed or
//! downloaded), then generate prost messages and tonic client/server stubs from it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=taustar.proto");
    let fds = protox::compile(["taustar.proto"], ["."])?;
    // The encoded descriptors, for gRPC reflection (`taustar_proto::FILE_DESCRIPTOR_SET`).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("taustar_descriptor.bin");
    std::fs::write(out, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
