"""vectorize stage."""
