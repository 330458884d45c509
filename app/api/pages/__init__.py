"""The hosted pages' toolkit: templates, rendering with branding and security headers, CSRF
protection of their forms, and the consent page's words for scopes. The routes that use it
live in app/api/routes/pages/."""

from app.api.pages.csrf import CsrfRejected
from app.api.pages.rendering import render_error, render_page
from app.api.pages.scope_words import describe_scopes
from app.api.pages.security_headers import form_action_source

__all__ = ["CsrfRejected", "describe_scopes", "form_action_source", "render_error", "render_page"]
