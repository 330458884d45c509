"""The admin API: users, roles, permissions, service clients, audit log."""
