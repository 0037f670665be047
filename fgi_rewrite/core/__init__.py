"""What every stage shares: diagnostic codes, the frozen data passed between stages, the
expression algebra."""
