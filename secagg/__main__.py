from secagg.cli import main

raise SystemExit(main())
