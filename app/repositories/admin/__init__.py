"""Roles, permissions and service clients."""
