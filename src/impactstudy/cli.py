"""Command-line entry point (filled in below)."""


def main(argv: list[str] | None = None) -> int:
    return 0
