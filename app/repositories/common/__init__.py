"""The repository base and what every domain's repositories share."""
