"""What operators watch: readiness."""
