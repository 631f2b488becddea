DROP TABLE handoff_steps;
