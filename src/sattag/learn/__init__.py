"""learn stage."""
