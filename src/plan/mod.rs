//! Plans: the ordered Create / Update / Scale / Delete / Adopt actions computed from the
//! diff, ownership and prune rules. Pure: no I/O. (Filled by issue #5.)
