"""The Faust worker: aggregation (rolling totals), threshold rules, HTTP API."""
