"""The server's services: the pure modules (catalog, policy, fetch) wired to the database."""
