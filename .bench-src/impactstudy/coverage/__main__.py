"""``python -m impactstudy.coverage``: run or resume the coverage simulation (``make coverage``)."""

from impactstudy.coverage.simulation import main

raise SystemExit(main())
