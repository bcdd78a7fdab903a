"""Layer 5, the report: assembly of per-test entries into the JSON document, the journal a killed run
leaves, the merge of shards, the terminal and step summaries, and ``compare`` of two reports."""
