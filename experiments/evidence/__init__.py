"""Evidence across campaigns: random-effects pooling, the results pack councils exchange,
and the Bayesian reading of a new campaign against the pooled evidence."""
