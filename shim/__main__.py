from shim.fast import main

raise SystemExit(main())
