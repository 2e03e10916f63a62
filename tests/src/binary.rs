//! Finds the `ringway` binary under test, building it once per test process.
//!
//! The test binary lives in `<target>/debug/deps/`, so the proxy is `<target>/debug/ringway`.
//! Building it from here (rather than relying on a dev-dependency) keeps this crate black-box:
//! it compiles against nothing of the engine, and always runs the engine's current source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Path of the freshly built `ringway` binary. Panics with cargo's output if the build fails.
pub fn ringway_binary() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(build) {
        Ok(path) => path,
        Err(e) => panic!("cannot build the ringway binary: {e}"),
    }
}

fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // <target>/debug/deps/integration-xxxx -> <target>/debug
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("no target directory above {}", profile_dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "-p", "ringway", "--bin", "ringway"]);
    // `cargo test --release` puts the tests in <target>/release: build the proxy there too.
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let output = command
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build -p ringway failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let binary = profile_dir.join("ringway");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} does not exist after the build",
            binary.display()
        ))
    }
}
