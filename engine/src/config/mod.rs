//! ringway's configuration file (DESIGN §2), in three stages.
//!
//! 1. `document` parses the TOML into the `raw` structs, which mirror the file
//!    exactly and keep every value's span;
//! 2. `compile` (with `upstream`, `server`, `route`, `headers`) validates them,
//!    collecting every error with file:line:col and key path;
//! 3. the result is an immutable `Snapshot` for the data path.
//!
//! User input never panics: every problem becomes a `ConfigError`.

mod compile;
mod document;
mod error;
mod headers;
mod raw;
mod route;
mod server;
pub(crate) mod suggest;
mod tls;
mod units;
mod upstream;
mod validity;

use std::path::Path;

pub use compile::{
    BUFFER_SIZE_MAX, BUFFER_SIZE_MIN, RING_ENTRIES_CEILING, WORKERS_MAX, human_size,
};
pub use error::{ConfigError, ConfigErrors};
pub use units::{parse_duration, parse_size};

use crate::snapshot::Snapshot;
use error::Diagnostics;

/// The configuration `ringway run` uses when there is no `ringway.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");

/// Loads and compiles a config file; an unreadable file is a `ConfigError` too.
pub fn load_file(path: &Path) -> Result<Snapshot, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::single(&origin, format!("cannot read config: {e}")))?;
    load(&text, &origin, Some(path.to_path_buf()))
}

/// Compiles config text; `origin` names it in error messages.
pub fn load_str(text: &str, origin: &str) -> Result<Snapshot, ConfigErrors> {
    load(text, origin, None)
}

fn load(
    text: &str,
    origin: &str,
    source: Option<std::path::PathBuf>,
) -> Result<Snapshot, ConfigErrors> {
    let mut diag = Diagnostics::new(origin, text);
    let snapshot =
        document::parse(text, &mut diag).and_then(|doc| compile::compile(&doc, &mut diag, source));
    match snapshot {
        Some(mut snapshot) if !diag.has_errors() => {
            snapshot.warnings = diag.take_warnings();
            Ok(snapshot)
        }
        _ => Err(diag.finish()),
    }
}

#[cfg(test)]
mod tests;
