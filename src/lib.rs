//! mesosync keeps Marathon apps and Chronos jobs equal to a directory of YAML manifests.
//!
//! One reconcile is a short pipeline: [`source`] loads the manifest directory into the
//! typed desired state of [`model`]; [`client`] lists the live apps and jobs (one GET per
//! system); [`normalize`] brings both sides to one canonical form; [`diff`] compares them
//! field by field; [`plan`] turns the differences into ordered actions; [`apply`] makes
//! the minimal HTTP writes and waits on Marathon deployments. `source` to `plan` are pure
//! functions: no HTTP, no clock, no globals. [`runtime`] runs the pipeline continuously
//! (file watch, resync timer, Marathon's event stream) and [`server`] reports on it,
//! both through [`status`]; [`daemon`] wires them into the `mesosync run` process.
//! [`emulator`] is an independent Marathon + Chronos server used by `mesosync sandbox`,
//! by `make run` and by every integration test. [`ha`] elects one leader among several
//! replicas in ZooKeeper and fences every write on that leadership.
#![forbid(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod diff;
pub mod emulator;
pub mod generate;
pub mod ha;
pub mod health;
pub mod import;
pub mod model;
pub mod normalize;
pub mod notify;
pub mod plan;
pub mod preview;
pub mod reconcile;
pub mod runtime;
pub mod server;
pub mod source;
pub mod status;
pub mod system;
