from shim.main import main

raise SystemExit(main())
