"""Users, their one-time action tokens and the credential reads of the hot path."""
