"""Linked provider accounts and pending social sign-in states."""
