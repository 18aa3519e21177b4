"""Helpers shared by more than one test folder (importable as `support.*`: pytest puts
`tests/` on sys.path for the root conftest)."""
