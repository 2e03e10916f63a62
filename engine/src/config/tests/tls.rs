//! `tls`, `" tls"` addresses, `hsts` and `redirect`: certificates from real
//! PEM files made with rcgen in a temporary directory.

use std::path::PathBuf;

use super::*;

/// A temporary directory with PEM files, removed on drop.
pub(super) struct Pems(PathBuf);

impl Pems {
    pub(super) fn new(tag: &str) -> Pems {
        let dir =
            std::env::temp_dir().join(format!("ringway-config-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Pems(dir)
    }

    /// Writes `NAME.crt` and `NAME.key` for `names`, expiring in `year`.
    pub(super) fn cert(&self, file: &str, names: &[&str], year: i32) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let crt = self.0.join(format!("{file}.crt"));
        let pem_key = self.0.join(format!("{file}.key"));
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem_key, key.serialize_pem()).unwrap();
        (crt.display().to_string(), pem_key.display().to_string())
    }
}

impl Drop for Pems {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tls_server(listen: &str, names: &str, cert: &str, key: &str) -> String {
    format!(
        "[[server]]\nlisten = [{listen}]\nnames = [{names}]\ntls = {{ cert = \"{cert}\", key = \"{key}\" }}\n[[server.route]]\nprefix = \"/\"\nrespond = 200\n"
    )
}

#[test]
fn two_servers_share_a_tls_address_and_one_also_listens_plain() {
    let pems = Pems::new("share");
    let (a_crt, a_key) = pems.cert("a", &["a.test"], 2090);
    let (b_crt, b_key) = pems.cert("b", &["b.test"], 2090);
    let text = tls_server(
        "\"127.0.0.1:443 tls\", \"127.0.0.1:80\"",
        "\"a.test\"",
        &a_crt,
        &a_key,
    ) + &tls_server("\"127.0.0.1:443 ssl\"", "\"b.test\"", &b_crt, &b_key);
    let s = load(&text);
    assert_eq!(s.listeners.len(), 2);
    assert!(s.listeners[0].tls.is_some());
    assert!(s.listeners[1].tls.is_none(), "127.0.0.1:80 is plain");
    assert_eq!(s.listeners[0].servers, vec![0, 1]);
    assert!(s.warnings.is_empty());
}

#[test]
fn file_errors_name_the_key() {
    let pems = Pems::new("files");
    let (crt, key) = pems.cert("a", &["a.test"], 2090);
    let (_, other_key) = pems.cert("b", &["b.test"], 2090);
    let cases = [
        (
            tls_server(
                "\"127.0.0.1:443 tls\"",
                "\"a.test\"",
                "/nonexistent/a.crt",
                &key,
            ),
            "ringway.toml:4:16: server[0].tls.cert: cannot read \"/nonexistent/a.crt\"",
        ),
        (
            tls_server("\"127.0.0.1:443 tls\"", "\"a.test\"", &key, &key),
            "server[0].tls.cert: ",
        ),
        (
            tls_server("\"127.0.0.1:443 tls\"", "\"a.test\"", &crt, &crt),
            "server[0].tls.key: ",
        ),
        (
            tls_server("\"127.0.0.1:443 tls\"", "\"a.test\"", &crt, &other_key),
            "server[0].tls.key: ",
        ),
    ];
    let expect_text = [
        "cannot read",
        "holds no certificate",
        "holds no private key",
        "does not belong to the certificate",
    ];
    for ((text, head), what) in cases.iter().zip(expect_text) {
        let e = single_error(text);
        assert!(e.contains(head), "{e}");
        assert!(e.contains(what), "{e}");
    }
}

#[test]
fn tls_addresses_need_certificates_and_agreement() {
    let pems = Pems::new("agree");
    let (crt, key) = pems.cert("a", &["a.test"], 2090);
    let bare = "[[server]]\nlisten = [\"127.0.0.1:443 tls\"]\n[[server.route]]\nprefix = \"/\"\nrespond = 200\n";
    let e = single_error(bare);
    assert!(
        e.starts_with("ringway.toml:2:11: server[0].listen[0]: no certificate for the TLS address 127.0.0.1:443"),
        "{e}"
    );

    let after_a_bad_entry = bare.replace(
        "listen = [\"127.0.0.1:443 tls\"]",
        "listen = [\"nonsense\", \"127.0.0.1:443 tls\"]",
    );
    let paths: Vec<String> = errors(&after_a_bad_entry)
        .iter()
        .map(|e| e.key_path.clone())
        .collect();
    assert_eq!(paths, ["server[0].listen[0]", "server[0].listen[1]"]);

    let plain_with_cert = tls_server("\"127.0.0.1:80\"", "\"a.test\"", &crt, &key);
    let e = single_error(&plain_with_cert);
    assert!(
        e.contains("server[0].tls: no listen address of this server is TLS"),
        "{e}"
    );

    let disagree = tls_server("\"127.0.0.1:443 tls\"", "\"a.test\"", &crt, &key)
        + "[[server]]\nlisten = [\"127.0.0.1:443\"]\nnames = [\"b.test\"]\n[[server.route]]\nprefix = \"/\"\nrespond = 200\n";
    let e = single_error(&disagree);
    assert!(
        e.contains("server[1].listen[0]: 127.0.0.1:443 is plain HTTP here but TLS in server[0]"),
        "{e}"
    );
}

#[test]
fn expired_certificate_is_a_warning() {
    let pems = Pems::new("expired");
    let (crt, key) = pems.cert("old", &["old.test"], 2001);
    let s = load(&tls_server(
        "\"127.0.0.1:443 tls\"",
        "\"old.test\"",
        &crt,
        &key,
    ));
    assert_eq!(s.warnings.len(), 1);
    let w = s.warnings[0].to_string();
    assert!(w.contains("server[0].tls.cert: the certificate in"), "{w}");
    assert!(w.contains("expired"), "{w}");
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let pems = Pems::new("relative");
    pems.cert("site", &["site.test"], 2090);
    let file = pems.0.join("ringway.toml");
    std::fs::write(
        &file,
        tls_server(
            "\"127.0.0.1:443 tls\"",
            "\"site.test\"",
            "site.crt",
            "site.key",
        ),
    )
    .unwrap();
    let s = load_file(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.listeners[0].tls.is_some());
}

#[test]
fn hsts_is_only_in_the_tls_headers() {
    let text = "[[server]]\nlisten = [\"127.0.0.1:80\"]\nhsts = \"max-age=63072000; includeSubDomains\"\nresponse_headers = { \"X-A\" = \"1\" }\n[[server.route]]\nprefix = \"/\"\nrespond = 200\n";
    let s = load(text);
    let names = |tls: bool| -> Vec<String> {
        s.servers[0]
            .response_headers_for(tls)
            .edits
            .iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect()
    };
    assert_eq!(names(false), ["x-a"]);
    assert_eq!(names(true), ["x-a", "strict-transport-security"]);

    let e = single_error(&text.replace("max-age=63072000; ", ""));
    assert!(
        e.contains(
            "server[0].hsts: \"includeSubDomains\": Strict-Transport-Security requires max-age"
        ),
        "{e}"
    );
}

#[test]
fn redirect_statuses() {
    let route = |extra: &str| {
        format!(
            "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nprefix = \"/\"\n{extra}\n"
        )
    };
    let status_of = |extra: &str| match &load(&route(extra)).servers[0].routes.routes()[0].action {
        Action::Redirect { status, .. } => *status,
        other => panic!("not a redirect: {other:?}"),
    };
    assert_eq!(status_of("redirect = \"https://$host$request_uri\""), 301);
    for code in [302, 303, 307, 308] {
        assert_eq!(
            status_of(&format!("redirect = \"https://x/\"\nstatus = {code}")),
            code
        );
    }
    let e = single_error(&route("redirect = \"https://x/\"\nstatus = 200"));
    assert!(
        e.contains(
            "server[0].route[0].status: a redirect status is 301, 302, 303, 307 or 308, not 200"
        ),
        "{e}"
    );
    let e = single_error(&route("respond = 200\nstatus = 302"));
    assert!(
        e.contains("server[0].route[0].status: `status` needs `redirect"),
        "{e}"
    );
    let e = single_error(&route("redirect = \"https://$hots/\""));
    assert!(e.contains("unknown variable \"$hots\""), "{e}");
}
