//! Tools: the registry (schemas compiled once, arguments validated on every call) and the
//! system-information tool. The file tools live with the sandbox in [`crate::files`].

pub mod digest;
pub mod output;
pub mod registry;
pub mod system;
