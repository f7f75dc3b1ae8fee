//! HTTP clients for Marathon and Chronos over one reqwest layer. The only place (with
//! `apply`) that talks to the APIs. (Filled by issue #6.)
