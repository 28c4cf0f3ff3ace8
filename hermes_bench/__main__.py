from hermes_bench.cli import main

main()
