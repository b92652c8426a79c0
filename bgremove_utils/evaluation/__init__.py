"""How good a matte is: the metrics, the trivial baseline, the tables."""
