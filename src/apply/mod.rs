//! The executor: turns a plan into HTTP writes in dependency order, waiting on Marathon
//! deployments, retrying locks and transient errors. (Filled by issue #6.)
