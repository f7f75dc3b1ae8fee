//! Normalizers, one per system, that bring desired and live objects to one canonical
//! form so that only real differences remain. Pure: no I/O, "now" is a parameter.
//! (Filled by issue #5.)
