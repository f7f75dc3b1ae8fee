mod plan_fixtures;
