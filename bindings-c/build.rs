//! Generates `include/iii.h` from the crate's `extern "C"` items with cbindgen.
//!
//! The header is committed and CI checks that it matches (`git diff --exit-code`). Generation
//! never fails the build: a problem is reported as a cargo warning and the old header stays.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(message) = generate() {
        println!("cargo:warning=iii.h was not regenerated: {message}");
    }
}

fn generate() -> Result<(), String> {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .map_err(|e| e.to_string())?;
    let mut text = Vec::new();
    bindings.write(&mut text);
    let path = crate_dir.join("include").join("iii.h");
    // Written only when it changed, so an unchanged header keeps its timestamp.
    if std::fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
        std::fs::create_dir_all(crate_dir.join("include")).map_err(|e| e.to_string())?;
        std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
