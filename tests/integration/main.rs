mod plan_fixtures;
mod plan_properties;
