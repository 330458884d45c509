"""The OpenID Provider's authorization endpoint: requests, browser sessions, consent, codes."""
