//! Field-level diff between normalized desired and live objects, its rendering and the
//! masking of secrets. Pure: no I/O. (Filled by issue #5.)
