"""Panel tests: the API module is mocked at its functions (docs/architecture.md section 3)."""
