"""Sign-in with external OAuth 2.0 / OpenID Connect providers."""
