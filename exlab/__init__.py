"""The Exchange lab: a simulated Exchange organisation with an EWS face, for tests and demos.

    from exlab import Lab
    from exlab.demo import open_demo
    from exlab.server import create_app

    lab = open_demo("lab.sqlite")               # the demo organisation; Lab.open() for an empty one
    app = create_app(lab)                       # EWS at /EWS/Exchange.asmx (any case)
    lab.knobs.throttle_budget = {"*": 50}       # faults on purpose: throttling,
    lab.knobs.latency_s = 0.2                   # latency,
    lab.knobs.outage = True                     # and outage (503)

The lab shares no code with the rest of `med`: it is an independent implementation, so that a
misunderstanding on the client side is not cancelled by the same one here.
"""

from exlab.lab import Lab

__all__ = ["Lab"]
