"""What administrators manage: users, roles and permissions, service clients, the audit log."""
