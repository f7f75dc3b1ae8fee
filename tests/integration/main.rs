mod apply;
mod client;
