//! The `file:///` URIs of sandboxed files: `file:///<root>/<relative path>` in the sandbox's
//! virtual namespace (see [`super::sandbox`]), percent-encoded per segment, so a URI never
//! reveals where a root lives on the host. Decoding is lenient on purpose: whatever a URI
//! decodes to (`..`, an encoded slash) is then refused by the sandbox, the one judge of paths.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

pub const SCHEME: &str = "file:///";

/// Characters escaped inside one path segment of a URI (RFC 3986 `pchar` minus a few).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'/');

/// The URI of a virtual path.
pub fn file_uri(virtual_path: &str) -> String {
    let mut uri = String::from(SCHEME);
    for (i, segment) in virtual_path.split('/').enumerate() {
        if i > 0 {
            uri.push('/');
        }
        uri.extend(utf8_percent_encode(segment, SEGMENT));
    }
    uri
}

/// The virtual path a URI names, if it is one of ours.
pub fn virtual_path_of(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix(SCHEME)?;
    if rest.contains(['?', '#']) {
        return None;
    }
    let decoded = percent_decode_str(rest).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_escape_segments() {
        let uri = file_uri("docs/a b/c#d.txt");
        assert_eq!(uri, "file:///docs/a%20b/c%23d.txt");
        assert_eq!(virtual_path_of(&uri).as_deref(), Some("docs/a b/c#d.txt"));
        assert_eq!(virtual_path_of("http://x/docs"), None);
        assert_eq!(virtual_path_of("file:///docs/a?x=1"), None);
        // an encoded slash or dot-dot decodes to something the sandbox refuses
        assert_eq!(
            virtual_path_of("file:///docs/%2E%2E/etc").as_deref(),
            Some("docs/../etc")
        );
    }
}
