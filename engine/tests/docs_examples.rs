//! The configs users copy from the docs must load: every ```toml block of the
//! README and docs/config.md, and every file in examples/. Their certificate
//! paths (`/etc/letsencrypt/...`) are replaced by generated PEM files, one
//! certificate and key per `tls = { cert, key }`, so everything else about
//! them is checked as written.

use std::path::{Path, PathBuf};

/// A temporary directory for generated certificates, removed on drop.
struct CertDir(PathBuf);

impl CertDir {
    fn new(tag: &str) -> CertDir {
        let dir = std::env::temp_dir().join(format!("ringway-docs-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        CertDir(dir)
    }

    /// `text` with each `tls = { cert = "...", key = "..." }` pointing at a
    /// freshly generated certificate and its key.
    fn substitute(&self, text: &str) -> String {
        let table = regex::Regex::new(r#"tls = \{ cert = "[^"]+", key = "[^"]+" \}"#).unwrap();
        let mut n = 0;
        table
            .replace_all(text, |_: &regex::Captures<'_>| {
                n += 1;
                let (cert, key) = self.pair(n);
                format!("tls = {{ cert = {cert:?}, key = {key:?} }}")
            })
            .into_owned()
    }

    fn pair(&self, n: usize) -> (String, String) {
        let params = rcgen::CertificateParams::new(vec![format!("site{n}.test")]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (crt_path, key_path) = (
            self.0.join(format!("{n}.crt")),
            self.0.join(format!("{n}.key")),
        );
        std::fs::write(&crt_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (path_text(&crt_path), path_text(&key_path))
    }
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn toml_blocks(text: &str) -> Vec<&str> {
    text.split("```toml")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect()
}

#[test]
fn readme_and_reference_examples_load() {
    let docs = [
        ("README.md", include_str!("../../README.md")),
        ("docs/config.md", include_str!("../../docs/config.md")),
    ];
    let certs = CertDir::new("blocks");
    let mut checked = 0;
    for (name, text) in docs {
        for (i, block) in toml_blocks(text).into_iter().enumerate() {
            // README snippets may leave out the listen address of a full config; the
            // reference and README blocks here are complete configs.
            let block = certs.substitute(block);
            if let Err(e) = ringway::config::load_str(&block, &format!("{name} block {i}")) {
                panic!("{name} block {i} does not load:\n{e}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 2, "expected TOML examples in the docs");
}

#[test]
fn example_files_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let certs = CertDir::new("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = certs.substitute(&std::fs::read_to_string(&path).unwrap());
            if let Err(e) = ringway::config::load_str(&text, &path.display().to_string()) {
                panic!("{} does not load:\n{e}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 1);
}
