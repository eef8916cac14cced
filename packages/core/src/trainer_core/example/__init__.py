"""Core's built-in example trainer: a small torch MLP on generated spirals, run through the real
checkpoint engine, metrics logger and hooks. It is what ``make demo`` runs and what the tests use
to prove bit-identical resume."""
