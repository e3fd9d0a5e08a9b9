"""The MOFA-style discovery loop: generate linkers, assemble MOFs, screen stability and CO2 uptake.

The computations are cheap proxies of MOFA's (see ``README.md``), not predictions.
"""
