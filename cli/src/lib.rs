//! The client side of Cairn: the API client, builds, repositories, the artifact
//! store and the build worker that the `cairn` command is made of. The build-step
//! Lambda runs the worker's jobs with the same code.

pub mod artifacts;
pub mod builds;
pub mod remote;
pub mod repos;
pub mod worker;
