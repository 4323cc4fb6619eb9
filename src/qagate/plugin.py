"""pytest wiring for qagate (being written)."""
