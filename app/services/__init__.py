"""Use cases. Each service method is one unit of work and owns its commit or rollback."""
