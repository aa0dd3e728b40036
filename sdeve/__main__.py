"""``python -m sdeve``: placeholder until the sampler lands."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sdeve`` command."""
    print("sdeve: the sampler command is not available yet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
