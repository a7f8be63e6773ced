//! Files under the allowed directories: the [`sandbox`] that resolves every path by descriptor
//! beneath a root, the bounded [`jobs`] queue that file work waits in, the shared operations
//! ([`walk`]: read a chunk, walk the roots), their `file:///` [`uri`]s, and the two ways a client
//! reaches them: the read-only [`tools`] and the [`resources`].

pub mod jobs;
pub mod resources;
pub mod sandbox;
pub mod tools;
pub mod uri;
pub mod walk;
