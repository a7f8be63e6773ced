//! [`Method`]: the JSON-RPC method of a message, parsed once when the envelope is read. Every
//! later decision (dispatch, the era's checks, which requests stream, the `Mcp-Name` key, the
//! audit and metric labels) matches on the enum, never on a string.

use serde::{Serialize, Serializer};

macro_rules! methods {
    ($($variant:ident => $name:literal,)*) => {
        /// An MCP method this server knows, or another one (kept as sent, for the error reply
        /// and the audit, which cuts it to size).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Method {
            $($variant,)*
            Other(String),
        }

        impl Method {
            /// Every known method, in the order the metrics list them.
            pub const KNOWN: &[Method] = &[$(Method::$variant,)*];

            /// The method a message names.
            pub fn parse(name: &str) -> Self {
                match name {
                    $($name => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }

            /// The method a message names, keeping the string itself when it is no known one.
            pub fn from_name(name: String) -> Self {
                match name.as_str() {
                    $($name => Self::$variant,)*
                    _ => Self::Other(name),
                }
            }

            /// The name of a known method (`None` for any other).
            pub fn known_name(&self) -> Option<&'static str> {
                match self {
                    $(Self::$variant => Some($name),)*
                    Self::Other(_) => None,
                }
            }
        }
    };
}

methods! {
    Initialize => "initialize",
    Initialized => "notifications/initialized",
    Cancelled => "notifications/cancelled",
    Ping => "ping",
    ServerDiscover => "server/discover",
    ToolsList => "tools/list",
    ToolsCall => "tools/call",
    ResourcesList => "resources/list",
    ResourcesRead => "resources/read",
    ResourcesTemplatesList => "resources/templates/list",
    ResourcesSubscribe => "resources/subscribe",
    ResourcesUnsubscribe => "resources/unsubscribe",
    PromptsList => "prompts/list",
    PromptsGet => "prompts/get",
    CompletionComplete => "completion/complete",
    LoggingSetLevel => "logging/setLevel",
    SubscriptionsListen => "subscriptions/listen",
    TasksGet => "tasks/get",
    TasksUpdate => "tasks/update",
    TasksCancel => "tasks/cancel",
}

impl Method {
    /// The method's name as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => known.known_name().unwrap_or_default(),
        }
    }

    /// Whether a request of this method may emit messages before its result (and so runs in
    /// a task of its own).
    pub fn may_stream(&self) -> bool {
        matches!(self, Self::ToolsCall | Self::PromptsGet)
    }

    /// The params key whose value `Mcp-Name` must repeat (2026-07-28), if the method has one.
    pub fn named_by(&self) -> Option<&'static str> {
        match self {
            Self::ToolsCall | Self::PromptsGet => Some("name"),
            Self::ResourcesRead => Some("uri"),
            Self::TasksGet | Self::TasksUpdate | Self::TasksCancel => Some("taskId"),
            _ => None,
        }
    }
}

impl PartialEq<str> for Method {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Method> for &str {
    fn eq(&self, other: &Method) -> bool {
        *self == other.as_str()
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_method_parses_to_itself_and_others_are_kept_as_sent() {
        for known in Method::KNOWN {
            let name = known.known_name().expect("known");
            assert_eq!(&Method::parse(name), known);
            assert_eq!(known.as_str(), name);
        }
        let other = Method::parse("tools/Call");
        assert_eq!(other, Method::Other("tools/Call".into()));
        assert_eq!(other.as_str(), "tools/Call");
        assert_eq!(other.known_name(), None);
    }

    #[test]
    fn only_tool_calls_and_prompts_stream_and_only_named_methods_need_mcp_name() {
        let streaming: Vec<_> = Method::KNOWN.iter().filter(|m| m.may_stream()).collect();
        assert_eq!(streaming, [&Method::ToolsCall, &Method::PromptsGet]);
        assert_eq!(Method::ResourcesRead.named_by(), Some("uri"));
        assert_eq!(Method::ToolsList.named_by(), None);
    }
}
