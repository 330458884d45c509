"""Runnable examples of using authsvc from other services."""
