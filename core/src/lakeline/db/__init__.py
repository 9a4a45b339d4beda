"""Database access: engines with dialect setup, sessions, and schema migrations."""
