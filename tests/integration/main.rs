mod apply;
mod client;
mod plan_fixtures;
