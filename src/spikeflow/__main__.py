from spikeflow.cli import main

raise SystemExit(main())
