"""`python -m server` runs the `paddock` command line."""

from server.cli import main

raise SystemExit(main())
