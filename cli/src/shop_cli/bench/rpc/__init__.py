"""`shop bench rpc` in parts, which `shop_cli.commands.bench_rpc` runs in this order:

variants      the servers, the calls made to them and the ratios shown  (variants.py)
sink          the OTLP receiver the traced servers export to  (sink.py)
servers       each server a child process: started, awaited, stopped  (servers.py)
              what two of them run: bare_server.py, shop_server.py
drive         warm-up, then rounds of load, one variant at a time, CPU read per slice  (drive.py)
accounting    server CPU per call, work deferred past a slice included  (accounting.py)
report        the machine, idle memory, rates, CPU per call and ratios as text  (report.py)

The accounting is free of I/O, so it is tested without servers.
"""
