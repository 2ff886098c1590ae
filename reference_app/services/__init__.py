"""Domain services: locks, idempotency keys, tenancy guards, sessions, assignments."""
