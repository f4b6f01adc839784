//! `application/x-www-form-urlencoded` parsing and the re-encoding RFC 9421 section
//! 2.2.8 applies to `@query-param` names and values.

/// Decodes one form-urlencoded name or value (WHATWG URL section 5.1): `+` is a space,
/// `%XX` a byte; a `%` not followed by two hex digits stays as it is. The bytes are then
/// read as UTF-8, invalid sequences becoming U+FFFD.
pub(crate) fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(|&h| hex(h)),
                bytes.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Percent-encodes with the `application/x-www-form-urlencoded` percent-encode set:
/// everything but ASCII alphanumerics and `*-._` becomes `%XX` (upper-case hex). A space
/// becomes `%20`, not `+`, as RFC 9421 section 2.2.8's example shows
/// (`with+plus+whitespace` signs as `with%20plus%20whitespace`).
pub(crate) fn form_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b));
        }
    }
    out
}

/// The upper-case hex digit of the low four bits of `n`.
fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n & 0x0f), 16).map_or('0', |c| c.to_ascii_uppercase())
}

/// The values of the query parameters whose encoded name is `encoded_name`, each
/// re-encoded (RFC 9421 section 2.2.8). Empty `&`-separated sequences are skipped.
pub(crate) fn query_param_values(query: &str, encoded_name: &str) -> Vec<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_encode(form_decode(name).as_bytes()) == encoded_name)
                .then(|| form_encode(form_decode(value).as_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9421_section_2_2_8_examples() {
        // GET /path?param=value&foo=bar&baz=batman&qux=
        let q = "param=value&foo=bar&baz=batman&qux=";
        assert_eq!(query_param_values(q, "baz"), ["batman"]);
        assert_eq!(query_param_values(q, "qux"), [""]);
        assert_eq!(query_param_values(q, "param"), ["value"]);
        // GET /parameters?var=this%20is%20a%20big%0Amultiline%20value&
        //   bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something
        let q = "var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something";
        assert_eq!(
            query_param_values(q, "var"),
            ["this%20is%20a%20big%0Amultiline%20value"]
        );
        assert_eq!(query_param_values(q, "bar"), ["with%20plus%20whitespace"]);
        assert_eq!(query_param_values(q, "fa%C3%A7ade%22%3A%20"), ["something"]);
    }

    #[test]
    fn decoding_edge_cases() {
        assert_eq!(form_decode("a%2"), "a%2");
        assert_eq!(form_decode("%zz%41"), "%zzA");
        assert_eq!(form_decode("%FF"), "\u{fffd}");
        assert_eq!(form_encode("~!'()".as_bytes()), "%7E%21%27%28%29");
        assert_eq!(form_encode(b"aZ09*-._"), "aZ09*-._");
        // Repeated and valueless parameters.
        assert_eq!(query_param_values("a=1&&a=2&b", "a"), ["1", "2"]);
        assert_eq!(query_param_values("a=1&&a=2&b", "b"), [""]);
        assert!(query_param_values("", "a").is_empty());
    }
}
