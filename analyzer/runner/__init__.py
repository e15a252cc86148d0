"""analyzer/runner."""
