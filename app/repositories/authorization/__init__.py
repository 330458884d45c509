"""Data access for the authorization endpoint: its codes and the users' grants to clients."""
