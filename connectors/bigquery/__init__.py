"""BigQuery: tables stay in the warehouse (remote), or registered SQL is materialized."""
