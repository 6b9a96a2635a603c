"""`python -m benchmarks`: run the suite, print the table and write docs/benchmarks.md."""

from benchmarks.cli import main

raise SystemExit(main())
