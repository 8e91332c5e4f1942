from tracedesk.cli import main

raise SystemExit(main())
