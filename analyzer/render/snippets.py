"""How a rule's example or a finding's next step is highlighted: as shell or as Python."""

from __future__ import annotations

# Snippets that are shell commands rather than Python.
_SHELL_PREFIXES = ("compile-diagnose ", "export ", "$ ")


def snippet_language(snippet: str) -> str:
    """ "shell" for a command line, "python" for anything else: how to highlight an example."""
    lines = [line for line in snippet.splitlines() if line.strip()]
    first = next((line for line in lines if not line.startswith("#")), "")
    return "shell" if first.startswith(_SHELL_PREFIXES) else "python"
