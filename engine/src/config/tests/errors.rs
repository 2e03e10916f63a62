//! Error reporting: positions, key paths, suggestions, several at once.

use super::*;

#[test]
fn not_supported_yet_keys() {
    let server = "[[server]]\nlisten = [\"127.0.0.1:80\"]\n";
    let route = "[[server.route]]\nprefix = \"/\"\n";
    let upstream = "[upstreams.a]\nservers = [\"127.0.0.1:1\"]\n";
    let proxied = format!("{server}{route}proxy = \"http://127.0.0.1:1\"\n");
    let mut cases: Vec<(String, String, String)> = vec![
        (
            format!("[rate_limits.api]\nrate = \"10/s\"\n{MINIMAL}"),
            "rate_limits".into(),
            "\"rate_limits\" is not supported yet (planned: rate limiting)".into(),
        ),
        (
            format!("[compression]\ngzip = true\n{MINIMAL}"),
            "compression".into(),
            "\"compression\" is not supported yet (planned: ".into(),
        ),
        (
            format!("{upstream}balance = \"least_conn\"\n{MINIMAL}"),
            "upstreams.a.balance".into(),
            "\"least_conn\" is not supported yet (planned: ".into(),
        ),
        (
            format!("{upstream}balance = \"ip_hash\"\n{MINIMAL}"),
            "upstreams.a.balance".into(),
            "\"ip_hash\" is not supported yet (planned: ".into(),
        ),
        (
            format!("{upstream}max_fails = 3\n{MINIMAL}"),
            "upstreams.a.max_fails".into(),
            "\"max_fails\" is not supported yet (planned: ".into(),
        ),
        (
            format!("{upstream}fail_timeout = \"10s\"\n{MINIMAL}"),
            "upstreams.a.fail_timeout".into(),
            "\"fail_timeout\" is not supported yet (planned: ".into(),
        ),
        (
            format!("{server}{route}static = \"/var/www\"\n"),
            "server[0].route[0].static".into(),
            "\"static\" is not supported yet (planned: static files)".into(),
        ),
        (
            format!("{server}{route}proxy = \"https://127.0.0.1:8443\"\n"),
            "server[0].route[0].proxy".into(),
            "\"https://\" upstreams are not supported yet (planned: TLS to upstreams)".into(),
        ),
    ];
    let route_options = [
        ("strip_prefix", "true"),
        ("index", "[\"index.html\"]"),
        ("try_files", "[\"$uri\", \"=404\"]"),
        ("rate_limit", "\"api\""),
        ("expires", "\"7d\""),
        ("compress", "true"),
        ("rewrite_location", "false"),
    ];
    for (key, value) in route_options {
        cases.push((
            format!("{proxied}{key} = {value}\n"),
            format!("server[0].route[0].{key}"),
            format!("\"{key}\" is not supported yet (planned: "),
        ));
    }
    for (text, path, message) in &cases {
        let e = single_error(text);
        assert!(e.contains(&format!(": {path}: ")), "{e}");
        assert!(e.contains(message.as_str()), "{e}");
    }
}

#[test]
fn typo_suggestion_with_exact_position() {
    let text = r#"[upstreams.jatos]
servers = ["127.0.0.1:9000"]

[[server]]
listen = ["127.0.0.1:8080"]
  [[server.route]]
    prefx = "/"
    proxy = "jatos"
"#;
    let errors = errors(text);
    assert_eq!(
        errors.len(),
        1,
        "{}",
        ConfigErrors {
            errors: errors.clone()
        }
    );
    let e = &errors[0];
    assert_eq!((e.line, e.col), (7, 5));
    assert_eq!(e.key_path, "server[0].route[0].prefx");
    assert_eq!(e.message, "unknown key `prefx` (did you mean `prefix`?)");
    assert_eq!(
        e.to_string(),
        "ringway.toml:7:5: server[0].route[0].prefx: unknown key `prefx` (did you mean `prefix`?)"
    );
}

#[test]
fn unknown_keys_everywhere() {
    let e = single_error(&format!("[upstream.jatos]\nservers = []\n{MINIMAL}"));
    assert!(
        e.starts_with(
            "ringway.toml:1:2: upstream: unknown key `upstream` (did you mean `upstreams`?)"
        ),
        "{e}"
    );
    let e = single_error(&format!("[runtime]\nworkerz = 2\n{MINIMAL}"));
    assert!(
        e.starts_with(
            "ringway.toml:2:1: runtime.workerz: unknown key `workerz` (did you mean `workers`?)"
        ),
        "{e}"
    );
    let e = single_error(&format!(
        "[upstreams.a]\nservers = [{{ addr = \"127.0.0.1:1\", wieght = 2 }}]\n{MINIMAL}"
    ));
    assert!(
        e.contains("upstreams.a.servers[0].wieght: unknown key `wieght` (did you mean `weight`?)"),
        "{e}"
    );
    let e = single_error("[[server]]\nlisten = [\"127.0.0.1:80\"]\nbanana = 1\n");
    assert!(
        e.contains("server[0].banana: unknown key `banana` (expected one of: listen, names"),
        "{e}"
    );
}

#[test]
fn unknown_upstream_is_reported_at_the_value() {
    let text = "[upstreams.jatos]\nservers = [\"127.0.0.1:9000\"]\n[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nprefix = \"/\"\nproxy = \"jatso\"\n";
    assert_eq!(
        single_error(text),
        "ringway.toml:7:9: server[0].route[0].proxy: unknown upstream \"jatso\" (did you mean \"jatos\"?)"
    );
    let no_upstreams = "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nprefix = \"/\"\nproxy = \"127.0.0.1:8000\"\n";
    assert!(single_error(no_upstreams).contains("an inline address needs \"http://\""));
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let text = r#"[runtime]
workers = "four"
driver = "iouring"

[upstreams.jatos]
servers = ["127.0.0.1:9000", { adr = "127.0.0.1:9001" }]

[[server]]
listen = ["0.0.0.0:80", "localhost:80"]
  [[server.route]]
  prefx = "/"
  proxy = "jatos"
  [[server.route]]
  prefix = "/a"
  proxy = "jatso"
  [[server.route]]
  regex = "("
  respond = 700
"#;
    let errors = errors(text);
    let got: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.col, e.key_path.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, 11, "runtime.workers"),
            (3, 10, "runtime.driver"),
            (6, 32, "upstreams.jatos.servers[1].adr"),
            (9, 25, "server[0].listen[1]"),
            (11, 3, "server[0].route[0].prefx"),
            (15, 11, "server[0].route[1].proxy"),
            (17, 11, "server[0].route[2].regex"),
            (18, 13, "server[0].route[2].respond"),
        ],
        "{}",
        ConfigErrors {
            errors: errors.clone()
        }
    );
    assert!(
        errors[6]
            .message
            .starts_with("invalid regex: unclosed group"),
        "{}",
        errors[6].message
    );
    assert_eq!(errors[7].message, "status 700 is out of range 100..=599");
    let rendered = ConfigErrors { errors }.to_string();
    assert_eq!(rendered.lines().count(), 8);
}

#[test]
fn syntax_errors_have_positions() {
    let unclosed = errors("[runtime]\nworkers = 2\n[limits\nmax_headers = 5\n");
    assert_eq!(
        (unclosed[0].line, unclosed[0].col),
        (3, 8),
        "{}",
        unclosed[0]
    );
    assert!(
        unclosed[0].message.contains("unclosed table"),
        "{}",
        unclosed[0]
    );
    let two_bad_lines =
        errors("[log]\nlevel = 'info\n[runtime]\nworkers = 1\nmax_connections = 1 2\n");
    let lines: Vec<usize> = two_bad_lines.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 5], "one error per bad line");
}

#[test]
fn no_server_is_an_error_but_a_server_without_routes_is_fine() {
    let e = single_error("[runtime]\nworkers = 1\n");
    assert!(e.contains("no [[server]] defined"), "{e}");
    let s = load("[[server]]\nlisten = [\"127.0.0.1:80\"]\n");
    assert!(s.servers[0].routes.find(b"/").is_none());
}

#[test]
fn hostile_input_never_panics() {
    let inputs = [
        "",
        "\u{feff}",
        "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nregex = \"(?P<\"\nrespond = 200\n",
        "server = 5",
        "server = [1, 2]",
        "[[server]]\nroute = \"x\"\n",
        "[[server]]\n[[server.route]]\n[[server.route]]\n",
        "upstreams = 3",
        "[upstreams]\na = 1\n",
        "[runtime]\nworkers = 99999999999999999999999\n",
        "[[server]]\nlisten = [\"127.0.0.1:80\"]\nnames = [\"é.example\"]\n",
        "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nprefix = \"/é\"\nproxy = \"http://[::1\"\n",
        "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nprefix = \"/\"\nproxy = \"http://\"\n",
        "a = 'é\n",
    ];
    for input in inputs {
        assert!(load_str(input, "x").is_err(), "{input:?}");
    }
}

#[test]
fn shape_mistakes_get_a_hint_and_no_follow_up_errors() {
    assert_eq!(
        single_error("[server]\nlisten = [\"127.0.0.1:80\"]\n"),
        "ringway.toml:1:1: server: invalid type: map, expected a sequence (a list of tables is written [[server]])"
    );
    let e =
        single_error("[[server]]\nlisten = [\"127.0.0.1:80\"]\n[server.route]\nprefix = \"/\"\n");
    assert!(
        e.ends_with("(a list of tables is written [[server.route]])"),
        "{e}"
    );
    let e = single_error("[[server]]\nlisten = \"127.0.0.1:80\"\n");
    assert_eq!(
        e,
        "ringway.toml:2:10: server[0].listen: invalid type: string \"127.0.0.1:80\", expected a sequence"
    );
    let e = single_error(&format!("[runtime]\npin = \"yes\"\n{MINIMAL}"));
    assert!(
        e.ends_with("runtime.pin: invalid type: string \"yes\", expected a boolean"),
        "{e}"
    );
}

/// The annotated example of DESIGN §2: every key in it must be known, so the
/// only errors are for features this build does not have yet.
const DESIGN_EXAMPLE: &str = r##"[runtime]
workers = 0            # 0 = one per available CPU            (--workers N)
pin = true             # pin worker i to CPU i                 (--no-pin)
driver = "auto"        # "io_uring" | "epoll" | "auto"         (--driver)
buffer_size = "16KiB"  # per-connection I/O buffer             (--buffer-size)
ring_entries = 1024    # io_uring submission queue size        (--ring-entries)
max_connections = 100000     # client connections per worker; more wait in the backlog
shutdown_timeout = "30s"     # graceful drain on SIGTERM
pid_file = "/run/ringway.pid"  # default: /run/ringway.pid as root, else $XDG_RUNTIME_DIR or /tmp

[limits]               # client-side protections (defaults shown)
header_timeout = "10s"       # whole request head must arrive in this   -> 408
keepalive_timeout = "75s"    # idle keep-alive client connection closed
max_header_size = "16KiB"    # request line + headers                   -> 431
max_headers = 100                                                       # -> 431
max_body_size = "1MiB"       # default for every route; "0" = unlimited -> 413

[log]
level = "info"               # error | warn | info | debug
access = "stdout"            # a file path | "stdout" | "off"
access_format = "combined"   # "combined" (nginx/Apache default) | "json"

[admin]                      # off unless `listen` is set
listen = "127.0.0.1:9901"    # GET /metrics (Prometheus text), GET /healthz, POST /reload

[upstreams.jatos]
servers = ["127.0.0.1:9000"]           # or [{ addr = "10.0.0.2:9000", weight = 2 }]
balance = "round_robin"                # | "least_conn" | "ip_hash"
keepalive = 32                         # idle connections kept per worker
connect_timeout = "5s"                 # -> 502/504 (see §4)
read_timeout = "60s"                   # between two reads from the upstream -> 504
send_timeout = "60s"
max_fails = 1                          # passive health: failures before a server
fail_timeout = "10s"                   # is skipped for fail_timeout (a lone server never is)

[rate_limits.api]            # one limit for the whole process, however many workers
rate = "10/s"                # or "600/m"
burst = 20                   # over rate+burst: 429 at once (nginx `nodelay`), never queued
key = "$remote_addr"         # any variable (§2.2)     -> 429 + Retry-After (seconds, >= 1)

[compression]                # used by routes with compress = true (default for proxy and static)
gzip = true
brotli = true
min_length = 256
types = ["text/*", "application/json", "application/javascript", "application/xml", "image/svg+xml"]

[[server]]
listen = ["0.0.0.0:443 tls", "[::]:443 tls"]   # " tls" marks a TLS address (nginx `listen 443 ssl`)
names = ["www.example.com", "*.example.com"]   # Host / SNI, exact then wildcard
default = false              # default server of its addresses; else the first in the file
tls = { cert = "/etc/ssl/certs/site.crt", key = "/etc/ssl/private/site.key" }
hsts = "max-age=63072000"                      # only sent over TLS
max_body_size = "500M"
response_headers = { "X-Content-Type-Options" = "nosniff" }
trusted_proxies = []          # peers whose X-Forwarded-* are kept and appended to

  [[server.route]]
  regex = '^/(jatos/testWebSocket|publix/\d+/(group/join|batch/open))'
  proxy = "jatos"
  idle_timeout = "7d"         # for upgraded connections

  [[server.route]]
  prefix = "/jatos"
  allow = ["192.168.1.0/24", "127.0.0.1"]        # everyone else -> 403
  proxy = "jatos"

  [[server.route]]
  prefix = "/"
  proxy = "jatos"

[[server]]
listen = ["0.0.0.0:80"]
  [[server.route]]
  prefix = "/.well-known/acme-challenge/"
  static = "/var/www/letsencrypt"
  [[server.route]]
  prefix = "/"
  redirect = "https://$host$request_uri"         # status = 301 by default
"##;

#[test]
fn design_example_only_lacks_planned_features() {
    // The example's certificate paths point at generated files.
    let pems = super::tls::Pems::new("design");
    let (crt, key) = pems.cert("site", &["www.example.com"], 2090);
    let text = DESIGN_EXAMPLE
        .replace("/etc/ssl/certs/site.crt", &crt)
        .replace("/etc/ssl/private/site.key", &key);
    let errors = errors(&text);
    let rendered = ConfigErrors {
        errors: errors.clone(),
    }
    .to_string();
    assert!(
        errors
            .iter()
            .all(|e| e.message.contains("is not supported yet")),
        "{rendered}"
    );
    let paths: Vec<&str> = errors.iter().map(|e| e.key_path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "upstreams.jatos.max_fails",
            "upstreams.jatos.fail_timeout",
            "rate_limits",
            "compression",
            "server[1].route[0].static",
        ],
        "{rendered}"
    );
}
