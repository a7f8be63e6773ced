//! The protocol revisions this server speaks, and the two eras they fall into.
//!
//! - **Modern** (`2026-07-28`): stateless. Every request carries its protocol version and client
//!   capabilities in `_meta`; there is no handshake and no session.
//! - **Legacy** (`2025-03-26`, `2025-06-18`, `2025-11-25`): an `initialize` handshake negotiates
//!   a version, and this server then keeps a session (see [`super::session`]).
//!
//! Negotiation in the legacy handshake never fails: a client that asks for a revision we do not
//! speak is answered with our newest legacy revision, and it is the client that decides whether
//! to go on (MCP lifecycle rules). `2026-07-28` is never offered there, because it has no
//! handshake.

/// A protocol revision this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

/// The two families of revisions, which differ in lifecycle, status codes and result shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    Legacy,
    Modern,
}

impl ProtocolVersion {
    /// Every revision we implement, newest first (the order `server/discover` lists them in).
    pub const ALL: [ProtocolVersion; 4] = [
        ProtocolVersion::V2026_07_28,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_03_26,
    ];

    /// The newest revision that has the `initialize` handshake.
    pub const LATEST_LEGACY: ProtocolVersion = ProtocolVersion::V2025_11_25;

    /// The current, stateless revision.
    pub const MODERN: ProtocolVersion = ProtocolVersion::V2026_07_28;

    /// Parses a revision string exactly (values are case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "2025-03-26" => Some(Self::V2025_03_26),
            "2025-06-18" => Some(Self::V2025_06_18),
            "2025-11-25" => Some(Self::V2025_11_25),
            "2026-07-28" => Some(Self::V2026_07_28),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn era(self) -> Era {
        match self {
            Self::V2026_07_28 => Era::Modern,
            _ => Era::Legacy,
        }
    }

    /// The version the legacy handshake answers with: the requested one when it is a legacy
    /// revision we speak, our newest legacy revision otherwise.
    pub fn negotiate_legacy(requested: &str) -> ProtocolVersion {
        match Self::parse(requested) {
            Some(v) if v.era() == Era::Legacy => v,
            _ => Self::LATEST_LEGACY,
        }
    }

    /// All supported revision strings, newest first.
    pub fn supported_strings() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact_and_case_sensitive() {
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(v.as_str()), Some(v));
        }
        assert_eq!(ProtocolVersion::parse("2024-11-05"), None);
        assert_eq!(ProtocolVersion::parse(" 2025-06-18"), None);
        assert_eq!(ProtocolVersion::parse("v999.0.0"), None);
    }

    #[test]
    fn legacy_negotiation_echoes_known_legacy_versions_and_falls_back_otherwise() {
        let cases = [
            ("2025-03-26", "2025-03-26"),
            ("2025-06-18", "2025-06-18"),
            ("2025-11-25", "2025-11-25"),
            ("2026-07-28", "2025-11-25"),
            ("2024-11-05", "2025-11-25"),
            ("garbage", "2025-11-25"),
        ];
        for (requested, expected) in cases {
            assert_eq!(
                ProtocolVersion::negotiate_legacy(requested).as_str(),
                expected,
                "{requested}"
            );
        }
    }

    #[test]
    fn only_2026_is_modern() {
        assert_eq!(ProtocolVersion::V2026_07_28.era(), Era::Modern);
        assert_eq!(ProtocolVersion::V2025_11_25.era(), Era::Legacy);
    }
}
