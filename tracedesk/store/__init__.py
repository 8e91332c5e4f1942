"""Storage: the SQLite schema, the single writer, readers and retention."""
