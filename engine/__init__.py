"""Generic machinery of the deadline engine: it knows no treaty."""
