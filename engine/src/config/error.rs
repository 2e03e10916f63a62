//! Config errors: where (file, line, column, key path) and what.
//!
//! `Diagnostics` collects every error of one load, so a user fixes a file in one
//! pass instead of one error per run; positions are computed from the byte
//! spans toml reports, with columns counted in characters, both 1-based.

use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or the name given to `load_str`).
    pub origin: String,
    /// 1-based; 0 when the error has no position (an unreadable file).
    pub line: usize,
    /// 1-based, in characters; 0 when the error has no position.
    pub col: usize,
    /// `server[0].route[2].proxy`; empty for errors about the whole file.
    pub key_path: String,
    pub message: String,
}

/// Every error found in one config; never empty when returned by a loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        f.write_str(": ")?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    pub(crate) fn single(origin: &str, message: String) -> ConfigErrors {
        ConfigErrors {
            errors: vec![ConfigError {
                origin: origin.to_owned(),
                line: 0,
                col: 0,
                key_path: String::new(),
                message,
            }],
        }
    }
}

/// Collects errors for one source text.
pub(crate) struct Diagnostics<'a> {
    origin: &'a str,
    text: &'a str,
    /// Byte offset of the first byte of each line.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(origin: &'a str, text: &'a str) -> Diagnostics<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Diagnostics {
            origin,
            text,
            line_starts,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error at the start of `span`.
    pub(crate) fn error(
        &mut self,
        span: Range<usize>,
        key_path: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, col) = self.position(span.start);
        self.errors.push(ConfigError {
            origin: self.origin.to_owned(),
            line,
            col,
            key_path: key_path.into(),
            message: message.into(),
        });
    }

    /// Records something that does not stop the config from loading but
    /// that the user should hear about (`ringway check` prints it).
    pub(crate) fn warning(
        &mut self,
        span: Range<usize>,
        key_path: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, col) = self.position(span.start);
        self.warnings.push(ConfigError {
            origin: self.origin.to_owned(),
            line,
            col,
            key_path: key_path.into(),
            message: message.into(),
        });
    }

    /// The warnings so far, in file order.
    pub(crate) fn take_warnings(&mut self) -> Vec<ConfigError> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|e| (e.line, e.col));
        warnings
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The collected errors in file order (stable for errors at one position).
    pub(crate) fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|e| (e.line, e.col));
        ConfigErrors {
            errors: self.errors,
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n\nlast";
        let d = Diagnostics::new("f.toml", text);
        assert_eq!(d.position(0), (1, 1));
        assert_eq!(d.position(4), (1, 5));
        assert_eq!(d.position(6), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(d.position(text.find("= \"x").unwrap()), (2, 4));
        assert_eq!(d.position(text.len()), (4, 5));
        assert_eq!(d.position(text.len() + 10), (4, 5));
        assert_eq!(d.position(text.find("é").unwrap() + 1), (2, 2));
    }

    #[test]
    fn display_formats() {
        let e = ConfigError {
            origin: "ringway.toml".into(),
            line: 14,
            col: 9,
            key_path: "server[0].route[2].proxy".into(),
            message: "unknown upstream \"jatso\" (did you mean \"jatos\"?)".into(),
        };
        assert_eq!(
            e.to_string(),
            "ringway.toml:14:9: server[0].route[2].proxy: unknown upstream \"jatso\" (did you mean \"jatos\"?)"
        );
        let whole = ConfigErrors::single("missing.toml", "cannot read: not found".into());
        assert_eq!(whole.to_string(), "missing.toml: cannot read: not found");
        let two = ConfigErrors {
            errors: vec![e.clone(), e],
        };
        assert_eq!(two.to_string().lines().count(), 2);
    }
}
