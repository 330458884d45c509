"""Building blocks every domain's services share: the service base, the unit of work, the caller,
the audit trail, rate limits. None of them commits.
"""
