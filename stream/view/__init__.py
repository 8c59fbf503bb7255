"""The global view every worker serves its API from, read from the output topics."""
