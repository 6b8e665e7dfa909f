from spikeflow.cli import main

main()
