"""med/lab."""
