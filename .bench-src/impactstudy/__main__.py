"""Allow ``python -m impactstudy``."""

from impactstudy.cli import main

raise SystemExit(main())
