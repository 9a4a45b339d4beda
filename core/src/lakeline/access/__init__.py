"""Access control: PostgreSQL roles (`roles`), spaces enforced by row-level security
(`spaces`) and the tamper-evident audit log (`audit`)."""
