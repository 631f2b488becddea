"""The fault suite (``make chaos``): load with faults injected, then the invariants checked."""
