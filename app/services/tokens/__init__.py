"""Tokens and sign-in sessions: the token endpoint's grants, sign-out, bearer checks, introspection,
revocation.
"""
