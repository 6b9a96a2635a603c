"""The send engine: claims, batch sending, leases, retries, the tick and dispatch."""
