"""The roof: the ``time2bet`` command line (``main``), the demo and the sample platform. They drive the
Dagster code location, the service and the core; nothing below imports them."""
