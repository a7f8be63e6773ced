//! Tools: the registry (schemas compiled once, arguments validated on every call) and the
//! built-in tools.

pub mod fs;
pub mod jobs;
pub mod registry;
pub mod sandbox;
pub mod system;
