"""Exchange's rules, protocol-neutral: the store, items, access, delivery, meetings, recurrence.

The EWS face (`exlab.ews`) and the Graph face (`exlab.graph`) translate their protocols to and
from this package and decide nothing themselves.
"""
