from graysteps.cli import main

raise SystemExit(main())
