//! Values with DESIGN §2.2 variables: `"$scheme://$host$request_uri"`.
//!
//! A template is parsed once, at config load, into literal byte runs and
//! variables; expanding it is a walk over those parts that appends to a caller's
//! buffer, so the data path never re-parses a string. Templates without variables
//! expose their bytes through `literal()` so callers can skip expansion entirely.
//! Variable names are case-insensitive, as nginx's are.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// The whole value when it has no variables.
    literal: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Bytes),
    Variable(Variable),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    /// Host without port, lower case (nginx `$host`).
    Host,
    /// Host header as sent.
    HttpHost,
    Scheme,
    RemoteAddr,
    RemotePort,
    ServerPort,
    /// Request target as sent, with the query.
    RequestUri,
    /// Normalised path, without the query.
    Uri,
    /// Query string without `?`.
    Args,
    RequestMethod,
    /// `$http_NAME`: a request header; lower-case name with `_` turned back to `-`.
    Http(Bytes),
}

/// What the data path provides to expand a template for one request.
pub trait Variables {
    /// Appends the value of `var` to `out`; an absent value appends nothing (nginx).
    fn write_var(&self, var: &Variable, out: &mut Vec<u8>);
}

impl Template {
    /// Parses `$name` and `${name}` references; `$$` is a literal `$`.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = s;
        while let Some(dollar) = rest.find('$') {
            literal.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
                continue;
            }
            let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced
                    .find('}')
                    .ok_or_else(|| format!("unclosed \"${{\" in {s:?}"))?;
                (&braced[..end], &braced[end + 1..])
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if name.is_empty() {
                return Err(format!(
                    "\"$\" without a variable name in {s:?} (write \"$$\" for a literal dollar sign)"
                ));
            }
            let variable = Variable::from_name(name)?;
            if !literal.is_empty() {
                parts.push(Part::Literal(Bytes::from(std::mem::take(&mut literal))));
            }
            parts.push(Part::Variable(variable));
            rest = tail;
        }
        literal.push_str(rest);
        if parts.is_empty() {
            let bytes = Bytes::from(literal);
            return Ok(Template {
                parts: vec![Part::Literal(bytes.clone())],
                literal: Some(bytes),
            });
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(Bytes::from(literal)));
        }
        Ok(Template {
            parts,
            literal: None,
        })
    }

    pub fn literal(&self) -> Option<&Bytes> {
        self.literal.as_ref()
    }

    /// The variables this template uses, in order.
    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(v) => Some(v),
            Part::Literal(_) => None,
        })
    }

    pub fn expand(&self, vars: &impl Variables, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(bytes) => out.extend_from_slice(bytes),
                Part::Variable(var) => vars.write_var(var, out),
            }
        }
    }
}

impl Variable {
    fn from_name(name: &str) -> Result<Variable, String> {
        let lower = name.to_ascii_lowercase();
        let var = match lower.as_str() {
            "host" => Variable::Host,
            "http_host" => Variable::HttpHost,
            "scheme" => Variable::Scheme,
            "remote_addr" => Variable::RemoteAddr,
            "remote_port" => Variable::RemotePort,
            "server_port" => Variable::ServerPort,
            "request_uri" => Variable::RequestUri,
            "uri" => Variable::Uri,
            "args" => Variable::Args,
            "request_method" => Variable::RequestMethod,
            _ => match lower.strip_prefix("http_") {
                Some(header) if valid_header_suffix(header) => {
                    Variable::Http(Bytes::from(header.replace('_', "-")))
                }
                _ => {
                    let hint =
                        crate::config::suggest::nearest(&lower, Variable::NAMES.iter().copied())
                            .map(|n| format!(" (did you mean \"${n}\"?)"))
                            .unwrap_or_default();
                    return Err(format!(
                        "unknown variable \"${name}\"{hint}; known: ${}, $http_NAME",
                        Variable::NAMES.join(", $")
                    ));
                }
            },
        };
        Ok(var)
    }

    const NAMES: &'static [&'static str] = &[
        "host",
        "http_host",
        "scheme",
        "remote_addr",
        "remote_port",
        "server_port",
        "request_uri",
        "uri",
        "args",
        "request_method",
    ];
}

/// `$http_NAME` needs a non-empty header name; braces may carry characters a bare
/// reference cannot, so check the name is still a token (RFC 9110 §5.1).
fn valid_header_suffix(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Variables for Fixed {
        fn write_var(&self, var: &Variable, out: &mut Vec<u8>) {
            let value: &[u8] = match var {
                Variable::Host => b"example.com",
                Variable::HttpHost => b"Example.com:8080",
                Variable::Scheme => b"http",
                Variable::RequestUri => b"/a?b=1",
                Variable::Http(name) if name.as_ref() == b"x-request-id" => b"abc",
                _ => b"",
            };
            out.extend_from_slice(value);
        }
    }

    fn expand(s: &str) -> String {
        let mut out = Vec::new();
        Template::parse(s).unwrap().expand(&Fixed, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn literal_has_no_variables() {
        let t = Template::parse("nosniff").unwrap();
        assert_eq!(t.literal().map(|b| b.as_ref()), Some(&b"nosniff"[..]));
        assert_eq!(expand("nosniff"), "nosniff");
        let empty = Template::parse("").unwrap();
        assert_eq!(empty.literal().map(|b| b.len()), Some(0));
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        let t = Template::parse("costs $$5").unwrap();
        assert_eq!(t.literal().map(|b| b.as_ref()), Some(&b"costs $5"[..]));
    }

    #[test]
    fn bare_and_braced_variables() {
        assert_eq!(
            expand("$scheme://$host$request_uri"),
            "http://example.com/a?b=1"
        );
        assert_eq!(expand("${host}x"), "example.comx");
        assert_eq!(expand("[$http_host]"), "[Example.com:8080]");
        assert_eq!(expand("${HOST}"), "example.com");
        assert!(Template::parse("$host").unwrap().literal().is_none());
    }

    #[test]
    fn http_header_variable_uses_dashes() {
        let t = Template::parse("$http_x_request_id").unwrap();
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            vec![&Variable::Http(Bytes::from_static(b"x-request-id"))]
        );
        assert_eq!(expand("id=$http_X_Request_ID;"), "id=abc;");
    }

    #[test]
    fn errors() {
        let err = Template::parse("$hots").unwrap_err();
        assert!(err.contains("unknown variable \"$hots\""), "{err}");
        assert!(err.contains("did you mean \"$host\""), "{err}");
        assert!(Template::parse("${host").unwrap_err().contains("unclosed"));
        assert!(Template::parse("a$").unwrap_err().contains("$$"));
        assert!(Template::parse("a$ b").is_err());
        assert!(Template::parse("$http_").is_err());
        assert!(Template::parse("${http_a b}").is_err());
    }
}
