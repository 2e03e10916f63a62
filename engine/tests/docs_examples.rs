//! The configs users copy from the docs must load: every ```toml block of the
//! README and docs/config.md, and every file in examples/.

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
    let mut checked = 0;
    for (name, text) in docs {
        for (i, block) in toml_blocks(text).into_iter().enumerate() {
            // README snippets may leave out the listen address of a full config; the
            // reference and README blocks here are complete configs.
            if let Err(e) = ringway::config::load_str(block, &format!("{name} block {i}")) {
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
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = ringway::config::load_file(&path) {
                panic!("{} does not load:\n{e}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 1);
}
